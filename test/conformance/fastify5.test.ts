import fastify5 from 'fastify5'
import { fastifyFactory } from '../helpers/fastify.js'
import { runAdapterSuite } from './suite.js'

runAdapterSuite({ ...fastifyFactory('fastify5', fastify5), appInvalidate: true, routeDisable: true })
