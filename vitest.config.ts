import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/build.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests spawn git/datalad; two cores.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
