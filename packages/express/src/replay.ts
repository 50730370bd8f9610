import type { IncomingMessage, ServerResponse } from 'node:http'
import { serverListener, type Replay } from '@corral/core/adapter'
import { inject } from 'light-my-request'

type Dispatch = (req: IncomingMessage, res: ServerResponse) => void
type ExpressApp = Dispatch & { parent?: ExpressApp }

const replays = new WeakMap<Dispatch, Replay>()

/**
 * How Corral runs a request through an Express app without a client (background refreshes,
 * warming): light-my-request, isolated from Express's prototype swap. Express points every
 * request and response at its own prototypes (`app.request`, `app.response`); light-my-request,
 * handed an Express app, re-points Express's shared prototypes at its own classes for good, which
 * breaks the app's next real response. Handed a plain function instead, it leaves them alone, and
 * its request and response keep their own methods as own properties, which the swap does not touch.
 */
export function replayInto(dispatch: Dispatch): Replay {
  let replay = replays.get(dispatch)
  if (replay === undefined) {
    const isolated = (req: IncomingMessage, res: ServerResponse): void => {
      pinMethods(req)
      pinMethods(res)
      dispatch(req, res)
    }
    replay = (request) => inject(isolated, { method: request.method, url: request.url, headers: request.headers })
    replays.set(dispatch, replay)
  }
  return replay
}

/**
 * Where a replay of `req` goes: the handler of the server that received it (the whole app, as a
 * client's request goes: a sub-app mounted by a Router has no `parent` to find its way up by), or
 * the top-level app by `parent` when the request came from no server (a replay of a replay).
 */
export function replayFor(req: IncomingMessage & { app?: ExpressApp }): Replay | undefined {
  const listener = serverListener(req)
  if (listener !== undefined) return replayInto(listener)
  let app = req.app
  if (app === undefined) return undefined
  while (app.parent !== undefined) app = app.parent
  return replayInto(app)
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
