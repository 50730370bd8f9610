import express4 from 'express4'
import { expressFactory } from '../helpers/express.js'
import { runAdapterSuite } from './suite.js'

runAdapterSuite({ ...expressFactory('express4', express4, 4, 'route'), routeDisable: true })
runAdapterSuite(expressFactory('express4', express4, 4, 'app'))
