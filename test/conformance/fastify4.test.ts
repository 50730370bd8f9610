import fastify4 from 'fastify4'
import { fastifyFactory } from '../helpers/fastify.js'
import { runAdapterSuite } from './suite.js'

runAdapterSuite({ ...fastifyFactory('fastify4', fastify4), appInvalidate: true, routeDisable: true })
