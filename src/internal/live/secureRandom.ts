/**
 * The live SecureRandom: the operating system's CSPRNG through `node:crypto`. This folder is the
 * only place in `src/` allowed to draw randomness directly.
 *
 * @internal
 */
import { randomFillSync } from "node:crypto"

// Refilling a pooled buffer amortises the syscall; IDs are 16–64 bytes, so one fill serves many.
const POOL_SIZE = 4096
let pool = Buffer.allocUnsafe(POOL_SIZE)
let offset = POOL_SIZE

/** Fresh random bytes from the OS CSPRNG. @internal */
export const randomBytes = (n: number): Uint8Array => {
  if (n > POOL_SIZE) return randomFillSync(Buffer.allocUnsafe(n))
  if (offset + n > POOL_SIZE) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_SIZE))
    offset = 0
  }
  const out = Uint8Array.prototype.slice.call(pool, offset, offset + n)
  // Never hand out the same bytes twice.
  pool.fill(0, offset, offset + n)
  offset += n
  return out
}
