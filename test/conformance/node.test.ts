import { nodeFactory } from '../helpers/node.js'
import { runAdapterSuite } from './suite.js'

// The third adapter proves the adapter contract: @corral/node is a few lines over
// @corral/core/adapter, and passes the same suite as Express and Fastify.
runAdapterSuite({ ...nodeFactory(), routeDisable: true })
