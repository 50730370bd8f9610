export { corral, type CorralExpressOptions } from './middleware.js'
export { invalidate, type InvalidateSpec } from './invalidate.js'
export { warm } from './warm.js'
