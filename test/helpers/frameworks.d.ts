// The root devDependency aliases of Express ship no types (@types/express belongs to the adapter
// package); the factories only need the application constructor.
declare module 'express4' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const express: (() => any) & Record<string, unknown>
  export default express
}
declare module 'express5' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const express: (() => any) & Record<string, unknown>
  export default express
}
