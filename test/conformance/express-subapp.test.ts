import express4 from 'express4'
import express5 from 'express5'
import { expressFactory } from '../helpers/express.js'
import { runAdapterSuite } from './suite.js'

// The app-wide corral() taps a response by its prototype; the routes answer inside a sub-app,
// where Express has swapped that prototype: mounted by app.use (the sub-app's prototypes inherit
// the parent's) and through a Router (they do not).
runAdapterSuite({ ...expressFactory('express5', express5, 5, 'router-subapp'), routeDisable: true })
runAdapterSuite({ ...expressFactory('express4', express4, 4, 'subapp'), routeDisable: true })
