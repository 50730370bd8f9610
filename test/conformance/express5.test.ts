import express5 from 'express5'
import { expressFactory } from '../helpers/express.js'
import { runAdapterSuite } from './suite.js'

runAdapterSuite({ ...expressFactory('express5', express5, 5, 'route'), routeDisable: true })
runAdapterSuite(expressFactory('express5', express5, 5, 'app'))
