/** `@corral/core/opentelemetry`: being written. */
export {}
