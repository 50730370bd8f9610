import {
  classifyKey,
  createResponseEntry,
  createVaryEntry,
  encodeEntry,
  ENVELOPE_HEAD_BYTES,
  pathIndexKey,
  peekEnvelopeClaims,
  peekEnvelopeHead,
  prefixIndexKey,
  tagIndexKey,
} from '@corral/core/store'
import { describe, expect, it } from 'vitest'
import { parseInvocation, signingKeysOf } from '../../packages/cli/src/args.js'
import { UsageError } from '../../packages/cli/src/errors.js'
import { bytes, cell, duration, MAX_CELL, table } from '../../packages/cli/src/format.js'
import { asSent, headersOf, prefixAsSent, targetOf } from '../../packages/cli/src/target.js'

// The pure parts of the CLI, and what it added to @corral/core/store: the layout's names must be
// those RedisStore writes (test/cli/cli.test.ts checks them against a real app too), and a peek
// at an envelope must agree with the codec.

const now = 1_700_000_000_000
const response = createResponseEntry({
  status: 203,
  headers: { 'content-type': 'text/plain' },
  body: Buffer.from('hello'),
  storedAt: now,
  lifetimeMs: 60_000,
  initialAge: 0,
  staleWhileRevalidateMs: 5_000,
  tags: ['a', 'b'],
  path: '/p',
  url: '/p?x=1',
})

describe('a peek at an envelope agrees with encodeEntry', () => {
  it.each([
    ['signed', Buffer.from('0123456789abcdef0123')],
    ['unsigned', undefined],
  ])('%s response', (_, key) => {
    const encoded = encodeEntry('ns:v1:k', response, now, key)
    if (encoded === undefined) throw new Error('not encoded')
    const head = peekEnvelopeHead(encoded.bytes.subarray(0, ENVELOPE_HEAD_BYTES))
    expect(head).toMatchObject({ version: 3, signed: key !== undefined })
    if (head === undefined) throw new Error('no head')
    const claims = peekEnvelopeClaims(encoded.bytes.subarray(head.metaOffset, head.metaOffset + head.metaLength))
    expect(claims).toEqual({ kind: 'response', status: 203, url: '/p?x=1', path: '/p', tags: ['a', 'b'], bodyLength: 5, names: undefined })
    // The body follows the metadata.
    expect(encoded.bytes.length).toBe(head.metaOffset + head.metaLength + 5)
  })

  it('a Vary marker', () => {
    const encoded = encodeEntry('ns:v1:k', createVaryEntry(['accept-language'], response, undefined), now, undefined)
    if (encoded === undefined) throw new Error('not encoded')
    const head = peekEnvelopeHead(encoded.bytes)
    if (head === undefined) throw new Error('no head')
    expect(peekEnvelopeClaims(encoded.bytes.subarray(head.metaOffset, head.metaOffset + head.metaLength))).toMatchObject({
      kind: 'vary',
      names: ['accept-language'],
      status: undefined,
    })
  })

  it('anything else is not an envelope', () => {
    expect(peekEnvelopeHead(Buffer.from('hello world, not an envelope at all'))).toBeUndefined()
    expect(peekEnvelopeClaims(Buffer.from('{"kind":"other"}'))).toBeUndefined()
    expect(peekEnvelopeClaims(Buffer.from('not json'))).toBeUndefined()
  })
})

describe('the Redis layout', () => {
  const hash = 'A'.repeat(43)
  it.each([
    [`ns:v1:${hash}`, 'entry'],
    [`ns:v1:${hash}:${'b'.repeat(43)}`, 'variant'],
    [`ns:v1:${hash}:lock`, 'lock'],
    ['ns:v1:i:t:product:1', 'tag-index'],
    ['ns:v1:i:p:/products/1', 'path-index'],
    ['ns:v1:i:d:/products/', 'dir-index'],
    ['ns:v1:log', 'log'],
    ['ns:v1:h:abc', 'health'],
    ['ns:v1:something', 'other'],
    ['other:v1:log', undefined],
  ])('%s is %s', (key, kind) => {
    expect(classifyKey('ns', key)).toBe(kind)
  })

  it('names the index sets invalidation sweeps', () => {
    expect(tagIndexKey('ns', 'product:1')).toBe('ns:v1:i:t:product:1')
    expect(pathIndexKey('ns', '/products/1')).toBe('ns:v1:i:p:/products/1')
    expect(prefixIndexKey('ns', '/products/4')).toBe('ns:v1:i:d:/products/')
    expect(prefixIndexKey('ns', '/products/')).toBe('ns:v1:i:d:/products/')
    expect(prefixIndexKey('ns', '/p')).toBe('ns:v1:i:d:/')
    // Long names are hashed.
    expect(tagIndexKey('ns', 't'.repeat(300))).toMatch(/^ns:v1:i:t:#[\w-]{43}$/)
  })
})

describe('arguments', () => {
  it('options go before or after the command', () => {
    const a = parseInvocation(['--json', 'inspect', 'http://a.test/', '-H', 'A: 1', '--headers', 'B: 2'])
    expect(a).toMatchObject({ command: 'inspect', help: false, positionals: ['http://a.test/'] })
    expect(a.values.headers).toEqual(['A: 1', 'B: 2'])
    expect(parseInvocation(['help', 'purge'])).toMatchObject({ command: 'purge', help: true })
  })

  it('a bad argument is a UsageError naming it', () => {
    expect(() => parseInvocation(['keys', '--soft'])).toThrow(/--soft is not an option of 'corral keys'/)
    expect(() => parseInvocation(['--tag', 'x'])).toThrow(/--tag needs a command/)
    expect(() => parseInvocation(['stats', '--json=yes'])).toThrow(/--json takes no value/)
    expect(() => signingKeysOf('a-key-of-16-bytes!,short')).toThrow(UsageError)
    expect(signingKeysOf(' first-key-0123456789 , ,second-key-0123456789')).toHaveLength(2)
  })

  it('a URL becomes the request the app receives', () => {
    expect(targetOf('https://user@Shop.test:8443/a%7Eb?x=1#frag', undefined, [])).toMatchObject({ host: 'Shop.test:8443', url: '/a%7Eb?x=1' })
    expect(targetOf('http://shop.test?x', undefined, []).url).toBe('/?x')
    expect(targetOf('/p', 'h.test', ['X-Forwarded-Proto: https']).view.headers).toEqual({ host: 'h.test', 'x-forwarded-proto': 'https' })
    expect(headersOf(['Accept-Language: fr', 'accept-language: en'])).toEqual({ 'accept-language': 'fr, en' })
  })

  it('the path and query are encoded as a browser sends them (new URL())', () => {
    expect(targetOf('http://shop.test/café/ünï?q=✓#x', undefined, []).url).toBe('/caf%C3%A9/%C3%BCn%C3%AF?q=%E2%9C%93')
    expect(targetOf('/a b/../c?d e', 'h.test', []).url).toBe('/c?d%20e')
    // Escapes already there are kept; a path starting with '//' stays a path.
    expect(asSent('/caf%C3%A9?q=%e2%9c%93')).toBe('/caf%C3%A9?q=%e2%9c%93')
    expect(asSent('//x/y')).toBe('//x/y')
    expect(prefixAsSent('/café/')).toBe('/caf%C3%A9/')
    // A last segment of '.' or '..' is part of the prefix, not a dot segment.
    expect(prefixAsSent('/a/.')).toBe('/a/.')
    expect(prefixAsSent('/p?x')).toBe('/p?x')
  })
})

describe('text output', () => {
  it('aligns columns and reads sizes and durations', () => {
    expect(table(['A', 'BB'], [['x', '1'], ['long', '22']], ['left', 'right'])).toBe('A     BB\nx      1\nlong  22')
    expect([bytes(512), bytes(3500), bytes(5 * 1024 * 1024)]).toEqual(['512 B', '3.4 KiB', '5.0 MiB'])
    expect([duration(850), duration(42_000), duration(298_000), duration(7_500_000), duration(-3000)]).toEqual(['850ms', '42s', '4m58s', '2h05m', '-3s'])
  })

  it('cuts long cells with an ellipsis (but not a column given no limit) and escapes control characters', () => {
    const long = 'u'.repeat(500)
    const lines = table(['URL', 'KEY'], [[long, 'k'.repeat(150)]], [], [undefined, Infinity]).split('\n')
    expect(lines[1]).toBe(`${'u'.repeat(MAX_CELL - 1)}…  ${'k'.repeat(150)}`)
    expect(lines[0]).toBe(`URL${' '.repeat(MAX_CELL - 3)}  KEY`)
    expect(cell('abc', 3)).toBe('abc')
    expect(cell('abcd', 3)).toBe('ab…')
    // A value planted in Redis cannot move the cursor or recolour the terminal.
    expect(cell('/a\u001b[2Jb\nc\u0085')).toBe('/a\\x1B[2Jb\\x0Ac\\x85')
  })
})
