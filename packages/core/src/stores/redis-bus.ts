import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { ALL, selectorsFromJson, type NormalizedSelectors } from '../model/invalidation.js'
import { isCluster, type RedisClient } from './redis-client.js'
import type { RedisGateway } from './redis-gateway.js'

/** Largest invalidation message accepted from another instance. */
const MAX_MESSAGE = 64 * 1024
const INVALIDATIONS = 'bus'

type Message = (payload: string) => void

/**
 * Messages between the instances that share a Redis namespace, on channels `<ns>:v1:<name>`:
 * invalidations (`bus`), and whatever other modules subscribe to (the fill lock's `fill`).
 * Publishing goes through the gateway; receiving has a connection of its own.
 */
export class RedisBus {
  private readonly id = randomBytes(8).toString('base64url')
  private subscriber: RedisClient | undefined
  private connections = 0
  private readonly listeners = new Map<string, Message[]>()
  private readonly gapListeners: (() => void)[] = []
  private closed = false

  constructor(
    private readonly gateway: RedisGateway,
    private readonly namespace: () => string,
  ) {}

  /**
   * Publishes `payload` on a channel, fire and forget, whenever the connection is up (even while
   * the circuit is open: a lost lock message costs other instances a wait bounded by lockTimeout).
   */
  publish(channel: string, payload: string): void {
    const name = this.channel(channel)
    this.gateway.sendAnyway((c) => c.publish(name, payload))
  }

  /** Sends an invalidation to every other instance; resolves once Redis has taken it. */
  async broadcast(json: string): Promise<void> {
    const { gateway } = this
    if (!gateway.canSend()) throw gateway.unavailable('telling other instances of an invalidation')
    try {
      await gateway.call(() => gateway.client.publish(this.channel(INVALIDATIONS), `${this.id} ${json}`), gateway.writeTimeoutMs)
    } catch (err) {
      throw gateway.storeError(err, 'telling other instances of an invalidation failed')
    }
  }

  /**
   * Calls `listener` with every invalidation another instance makes, and with `ALL` after the
   * connection that receives them was lost (messages sent meanwhile are gone).
   */
  onInvalidation(listener: (sel: NormalizedSelectors) => void): void {
    this.subscribe(INVALIDATIONS, (message) => {
      if (message.length > MAX_MESSAGE) return
      const space = message.indexOf(' ')
      if (space <= 0 || message.slice(0, space) === this.id) return
      const sel = selectorsFromJson(message.slice(space + 1))
      if (sel !== undefined) listener(sel)
    })
    this.gapListeners.push(() => listener(ALL))
  }

  /** Calls `listener` with every message on `<ns>:v1:<channel>`, over a connection of its own. */
  subscribe(channel: string, listener: Message): void {
    if (this.closed) return
    const name = this.channel(channel)
    const known = this.listeners.get(name)
    if (known !== undefined) return void known.push(listener)
    this.listeners.set(name, [listener])
    if (this.subscriber === undefined) this.subscriber = this.connect()
    this.subscriber.subscribe(name).catch((err: unknown) => {
      if (!this.closed) this.gateway.failed(err, 'subscribing to messages from other instances failed', undefined)
    })
  }

  close(): void {
    this.closed = true
    const sub = this.subscriber
    this.subscriber = undefined
    sub?.disconnect()
  }

  private connect(): RedisClient {
    const { client } = this.gateway
    // A subscriber sends a handful of commands, all of which must arrive: let it queue them until
    // it is connected, and resubscribe after every reconnection (ioredis' default).
    const sub: RedisClient = isCluster(client)
      ? client.duplicate(undefined, { enableOfflineQueue: true })
      : (client as Redis).duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined })
    sub.on('error', this.gateway.onClientError)
    sub.on('message', (ch: string, msg: string) => {
      for (const listener of this.listeners.get(ch) ?? []) listener(msg)
    })
    sub.on('ready', () => {
      // Every connection after the first may have missed messages while it was down.
      if (++this.connections > 1) for (const gap of this.gapListeners) gap()
    })
    return sub
  }

  private channel(name: string): string {
    return `${this.namespace()}:v1:${name}`
  }
}
