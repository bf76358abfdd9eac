/** What minipach decides about Slurm without Slurm: sbatch options from a spec, squeue's lines, ended tasks. */
import { describe, expect, it } from 'vitest';
import { parseSqueue } from '../../daemon/adapters/slurm.js';
import { SpecError } from '../../daemon/core/errors.js';
import { endedTask, hasEnded, sbatchOptions } from '../../daemon/core/slurm.js';
import { loadSpec, type PipelineSpec } from '../../daemon/core/spec.js';

const spec = (extra: string): PipelineSpec => {
  const s = loadSpec('p/spec.yml', `input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: [sh, -c, "true"] }\n${extra}`);
  if (s instanceof SpecError) throw s;
  return s;
};

describe('sbatch options of a pipeline', () => {
  it("map Pachyderm's resource_requests / resource_limits, and the slurm block", () => {
    const s = spec(`resource_requests: { cpu: 1.5, memory: 2G, gpu: { type: nvidia.com/gpu, number: 1 }, disk: 10Gi }\nresource_limits: { memory: 3Gi }\nslurm: { partition: short, options: ["--account=lab"] }\n`);
    expect(sbatchOptions(s, 10)).toEqual(['--cpus-per-task=2', '--mem=3072M', '--gres=gpu:1', '--tmp=10240M', '--partition=short', '--account=lab']);
    expect(sbatchOptions(spec('resource_limits: { gpu: { type: a100, number: 2 } }\n'), 1)).toEqual(['--gres=gpu:a100:2']);
  });

  it('take datum_timeout times the batch, plus the overhead, as the time limit, unless slurm.time says', () => {
    expect(sbatchOptions(spec('datum_timeout: 90s\n'), 10)).toEqual(['--time=25']);
    expect(sbatchOptions(spec('datum_timeout: 90s\nslurm: { time: "2:00:00" }\n'), 10)).toEqual(['--time=2:00:00']);
    expect(sbatchOptions(spec(''), 10)).toEqual([]);
  });

  it('refuse what is not Slurm, with the field and a hint', () => {
    const bad = (extra: string) => loadSpec('p/spec.yml', `input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: [x] }\n${extra}`) as SpecError;
    expect(bad('slurm: { time: "soon" }\n').message).toMatch(/slurm\.time.*not a Slurm time limit.*e\.g\. "30"/);
    expect(bad('slurm: { options: ["--array=1-4"] }\n').message).toMatch(/slurm\.options\[0\].*set by minipach/);
    expect(bad('resource_requests: { memory: lots }\n').message).toMatch(/resource_requests\.memory.*not an amount of bytes/);
    expect(bad('resource_requests: { cores: 2 }\n').message).toMatch(/unknown field "cores"/);
  });
});

describe('squeue', () => {
  it('lists every task of minipach jobs, pending ranges task by task; other jobs are not ours', () => {
    const text = ['12_3|RUNNING|None|minipach-ds-count', '12_[4-6%2]|PENDING|JobArrayTaskLimit|minipach-ds-count', '13_[0,2]|PENDING|Priority|minipach-ds-x', '14|RUNNING|None|someone-else', '15_0|NODE_FAIL|NodeDown|minipach-ds-count', ''].join('\n');
    expect(parseSqueue(text).map((t) => `${t.job}_${t.task} ${t.state}`)).toEqual(['12_3 RUNNING', '12_4 PENDING', '12_5 PENDING', '12_6 PENDING', '13_0 PENDING', '13_2 PENDING', '15_0 NODE_FAIL']);
  });
});

describe('an ended task', () => {
  it('runs its datums again after a node failure or preemption; TIMEOUT and OUT_OF_MEMORY are a try', () => {
    expect(hasEnded('RUNNING')).toBe(false);
    expect(hasEnded('TIMEOUT')).toBe(true);
    expect(endedTask('NODE_FAIL', 'NodeDown', '7_1')).toMatchObject({ again: true });
    expect(endedTask('PREEMPTED', '', '7_1')).toMatchObject({ again: true });
    expect(endedTask('TIMEOUT', '', '7_1')).toMatchObject({ again: false, timedOut: true, reason: expect.stringMatching(/TIMEOUT/) });
    expect(endedTask('OUT_OF_MEMORY', '', '7_1').reason).toMatch(/resource_limits\.memory/);
    expect(endedTask('COMPLETED', '', '7_1').reason).toMatch(/without reporting/);
  });
});
