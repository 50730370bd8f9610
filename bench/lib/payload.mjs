// The body every throughput scenario serves: one JSON document of exactly 2048 bytes, built once
// at start-up, so that no scenario measures JSON serialisation.

export const BODY_BYTES = 2048

/** A product-like JSON document of exactly `bytes` ASCII bytes; `seed` makes it distinct. */
export function jsonOfSize(bytes, seed = 0) {
  const doc = { id: seed, name: `Corral bench product ${seed}`, currency: 'EUR', items: [], pad: '' }
  for (let i = 0; JSON.stringify(doc).length < bytes - 80; i++) {
    doc.items.push({ sku: `SKU-${seed}-${String(i).padStart(4, '0')}`, qty: i % 7, price: 10 + ((i * 37) % 90) + 0.99 })
  }
  doc.items.pop()
  doc.pad = 'x'.repeat(bytes - JSON.stringify(doc).length)
  const text = JSON.stringify(doc)
  if (text.length !== bytes) throw new Error(`payload is ${text.length} bytes, expected ${bytes}`)
  return text
}

export const JSON_2K = jsonOfSize(BODY_BYTES, 42)
export const JSON_2K_BUFFER = Buffer.from(JSON_2K)
export const JSON_TYPE = 'application/json; charset=utf-8'
/** The constant origin's stampede route waits this long before answering. */
export const SLOW_ORIGIN_MS = 50
