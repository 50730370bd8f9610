import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Replay } from '@corral/core/adapter'
import { inject } from 'light-my-request'

type ExpressApp = ((req: IncomingMessage, res: ServerResponse) => void) & { parent?: ExpressApp }

const replays = new WeakMap<ExpressApp, Replay>()

/**
 * How Corral runs a request through an Express app without a client (background refreshes,
 * warming): light-my-request, isolated from Express's prototype swap. Express points every
 * request and response at its own prototypes (`app.request`, `app.response`); light-my-request,
 * handed an Express app, re-points Express's shared prototypes at its own classes for good, which
 * breaks the app's next real response. Handed a plain function instead, it leaves them alone, and
 * its request and response keep their own methods as own properties, which the swap does not touch.
 * Requests go to the top-level app (a mounted app's `req.app` is the sub-app), with the full URL.
 */
export function replayFor(app: ExpressApp): Replay {
  let root = app
  while (root.parent !== undefined) root = root.parent
  let replay = replays.get(root)
  if (replay === undefined) {
    const top = root
    const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
      pinMethods(req)
      pinMethods(res)
      top(req, res)
    }
    replay = (request) => inject(dispatch, { method: request.method, url: request.url, headers: request.headers })
    replays.set(root, replay)
  }
  return replay
}

/** Copies the methods of `obj`'s own class onto it, so that a prototype swap keeps them. */
function pinMethods(obj: object): void {
  const proto = Object.getPrototypeOf(obj) as object
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === 'constructor' || Object.hasOwn(obj, name)) continue
    const d = Object.getOwnPropertyDescriptor(proto, name)
    if (d !== undefined && typeof d.value === 'function') Object.defineProperty(obj, name, { value: d.value, writable: true, configurable: true, enumerable: false })
  }
}
