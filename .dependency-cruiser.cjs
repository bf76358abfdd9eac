/**
 * minipach's import rules (docs/architecture.md), checked by `npm test` (npm run lint:deps):
 * - no import cycles;
 * - core/ is pure: it imports nothing outside core/ but a few pure packages;
 * - only adapters/ starts processes (child_process, execa);
 * - only queue/ and adapters/ talk to BullMQ and Redis (bullmq, ioredis).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make the flow (event -> plan -> run -> integrate -> explain) unreadable.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-is-pure',
      severity: 'error',
      comment: 'core/ is the pure planning core: no git, Redis, processes or files; it imports only core/ and pure packages (node:module only to load ajv and yaml on first use, in core/lazy-parsers.ts).',
      from: { path: '^daemon/core/' },
      to: {
        pathNot: ['^daemon/core/', '^node_modules/(ajv|yaml|minimatch)/', '^(crypto|node:crypto|path|node:path)$', '^(module|node:module)$'],
      },
    },
    {
      name: 'processes-only-in-adapters',
      severity: 'error',
      comment: 'Only adapters/ start processes; everything else asks an adapter in minipach\'s verbs.',
      from: { path: '^daemon/', pathNot: '^daemon/adapters/' },
      to: { path: ['^(child_process|node:child_process)$', '^node_modules/execa/'] },
    },
    {
      name: 'queue-stores-only-in-queue-and-adapters',
      severity: 'error',
      comment: 'BullMQ and Redis are used only in queue/ and adapters/.',
      from: { path: '^daemon/', pathNot: ['^daemon/queue/', '^daemon/adapters/'] },
      to: { path: ['^node_modules/(bullmq|ioredis)/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a type from bullmq outside queue/ still ties that code to BullMQ.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    exclude: { path: '^dist/' },
  },
};
