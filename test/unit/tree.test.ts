import { describe, expect, it } from 'vitest';
import { coveringDirs } from '../../daemon/core/tree.js';

describe('coveringDirs (the read-only mounts of a batch)', () => {
  it("covers a batch's inputs with their highest directory that holds no output", () => {
    const inputs = Array.from({ length: 50 }, (_, i) => `raw/s${i}`);
    expect(coveringDirs([...inputs, 'code/run.sh'], inputs.map((p) => p.replace('raw', 'count')))).toEqual(['code', 'raw']);
  });

  it('never covers an output: a pipeline reading a sibling under its own directory keeps its mounts narrow', () => {
    // Inputs inside a directory that also holds outputs: the narrowest directory that holds none.
    expect(coveringDirs(['p/raw/a', 'p/raw/b'], ['p/out-a', 'p/out-b'])).toEqual(['p/raw']);
    // An input inside an output directory, or holding one, is mounted as it is (as every input was before).
    expect(coveringDirs(['p/x/in'], ['p/x'])).toEqual(['p/x/in']);
    expect(coveringDirs(['a/b'], ['a/b/c'])).toEqual(['a/b']);
  });

  it('drops paths another one covers', () => {
    expect(coveringDirs(['raw/s1', 'raw', 'raw/s2/f'], ['out/x'])).toEqual(['raw']);
  });
});
