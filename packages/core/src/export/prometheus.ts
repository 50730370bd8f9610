/** `@corral/core/prometheus`: being written. */
export {}
