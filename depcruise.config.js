// The layering of flyte-ts, checked file by file (`npm run deps`, part of `npm run lint`; dependency-cruiser):
//   SDK (src/*.ts, src/cli/, src/ui/)  ->  src/internal/  ->  src/store/
// Arrows point one way. A module lower down may import only the leaf modules listed below from a higher layer:
// plain data types, errors and option types, which import nothing but each other and the two pure helpers
// src/internal/duration.ts and timer.ts (which import only src/types.ts).
/** SDK modules that src/internal/ may import: leaves (types, errors, option and cache types), no behaviour. */
const SDK_LEAVES = '^src/(types|errors|options|cache)[.]ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles, type-only imports included.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'store-is-below-everything',
      severity: 'error',
      comment:
        'src/store/ never imports the SDK nor src/internal/: only the plain record types (src/types.ts) and the ' +
        'error classes (src/errors.ts), the password mask (src/internal/secrets.ts, a leaf) and the failure causes ' +
        '(src/internal/error-cause.ts, a leaf: the stores compute an action\'s cause as they write it).',
      from: { path: '^src/store/' },
      to: {
        path: '^src/',
        pathNot: ['^src/store/', '^src/(types|errors)[.]ts$', '^src/internal/(secrets|error-cause)[.]ts$'],
      },
    },
    {
      name: 'internal-is-below-the-sdk',
      severity: 'error',
      comment:
        'src/internal/ does not import SDK modules (src/*.ts, src/cli/, src/ui/) except the leaf modules: ' +
        'src/types.ts, src/errors.ts, src/options.ts and src/cache.ts (data types, errors, option types).',
      from: { path: '^src/internal/' },
      to: {
        path: '^src/([^/]+[.]ts|cli/|ui/)',
        pathNot: SDK_LEAVES,
      },
    },
    {
      name: 'sdk-leaves-are-leaves',
      severity: 'error',
      comment: 'The leaf modules that src/internal/ may import import only each other and pure helpers.',
      from: { path: SDK_LEAVES },
      to: { path: '^src/', pathNot: [SDK_LEAVES, '^src/internal/(duration|timer)[.]ts$'] },
    },
    {
      name: 'only-postgres-imports-pg',
      severity: 'error',
      comment: 'The pg driver is the Postgres store\'s business: only src/store/postgres/ imports it.',
      from: { path: '^src/', pathNot: '^src/store/postgres/' },
      to: { path: '(^|/)node_modules/(@types/)?pg/' },
    },
    {
      name: 'engine-is-below-everything',
      severity: 'error',
      comment:
        'src/engine/ never imports the SDK, src/internal/ nor the stores: only the plain record types ' +
        '(src/types.ts), the error classes (src/errors.ts) and the password mask (src/internal/secrets.ts).',
      from: { path: '^src/engine/' },
      to: { path: '^src/', pathNot: ['^src/engine/', '^src/(types|errors)[.]ts$', '^src/internal/secrets[.]ts$'] },
    },
    {
      name: 'only-the-engine-imports-redis',
      severity: 'error',
      comment: 'BullMQ and ioredis belong to the distributed engine: only src/engine/ imports them.',
      from: { path: '^src/', pathNot: '^src/engine/' },
      to: { path: '(^|/)node_modules/(bullmq|ioredis)/' },
    },
    {
      name: 'only-tracing-touches-opentelemetry',
      severity: 'error',
      comment:
        '@opentelemetry/api is an optional peer dependency, loaded lazily by src/internal/tracing.ts (with ' +
        'require, when an action asks for a tracer): nothing imports it, so flyte-ts loads without it.',
      from: { path: '^src/' },
      to: { path: '(^|/)node_modules/@opentelemetry/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { conditionNames: ['flyte-source', 'import', 'node', 'default'] },
    exclude: { path: '[.]d[.]ts$' },
  },
};
