/**
 * The JSON Schema of spec.yml: the one source of truth for its shape. `npm run schema` writes it to
 * specs/spec.schema.json for editors (a test checks the file is current). Every snake_case field also
 * accepts its camelCase spelling, as Pachyderm's JSON specs use it.
 */

type Schema = Record<string, unknown>;

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Object properties under both spellings; descriptions stay on both so editors show them. */
function props(p: Record<string, Schema>): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const [k, v] of Object.entries(p)) {
    out[k] = v;
    if (camel(k) !== k) out[camel(k)] = v;
  }
  return out;
}

const str = (description: string): Schema => ({ type: 'string', description });
const strList = (description: string): Schema => ({ type: 'array', items: { type: 'string' }, description });

const inputList = (description: string): Schema => ({
  type: 'array',
  minItems: 1,
  items: { $ref: '#/$defs/input' },
  description,
});

export const SPEC_SCHEMA: Schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://minipach.dev/spec.schema.json',
  title: 'minipach pipeline spec (spec.yml)',
  description:
    'A subset of the Pachyderm pipeline spec. The directory holding spec.yml names the pipeline; outputs go to <pipeline>/<datum name>/.',
  type: 'object',
  additionalProperties: false,
  required: ['input', 'transform'],
  properties: props({
    pipeline: {
      type: 'object',
      additionalProperties: false,
      properties: { name: str('Informational: the directory name is the pipeline name.') },
      description: "Pachyderm's pipeline block; accepted so Pachyderm specs load unchanged.",
    },
    description: str('What the pipeline does.'),
    input: { $ref: '#/$defs/input' },
    transform: {
      type: 'object',
      additionalProperties: false,
      required: ['cmd'],
      properties: props({
        cmd: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'The command and its arguments.' },
        stdin: strList('Lines fed to the command on standard input (or, when cmd ends in "-c", passed as its script).'),
        env: {
          type: 'object',
          additionalProperties: { type: ['string', 'number', 'boolean'] },
          description: 'Environment variables for the command. Part of the datum key.',
        },
        code: strList('Dataset paths (files or directories) whose content is part of the datum key.'),
        image: { type: ['string', 'null'], description: 'Container image to run the command in (optional).' },
      }),
    },
    datum_tries: { type: 'integer', minimum: 1, description: 'Attempts per datum before it is marked failed. @default 3' },
    datum_timeout: {
      type: ['string', 'number'],
      pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$',
      description: 'Time limit of one attempt, e.g. "90s", "2h", or seconds as a number.',
    },
    resource_requests: { $ref: '#/$defs/resources', description: "What one datum's command needs (Pachyderm's resource_requests). On Slurm: --cpus-per-task, --mem, --gres, --tmp of each array task." },
    resource_limits: { $ref: '#/$defs/resources', description: "The most one datum's command may use (Pachyderm's resource_limits). On Slurm, limits win over requests for --mem and --cpus-per-task." },
    slurm: {
      type: 'object',
      additionalProperties: false,
      description: 'Settings of this pipeline\'s Slurm array tasks (executor: slurm), beyond resource_requests.',
      properties: props({
        partition: str('The partition (sbatch --partition).'),
        time: str('Time limit of one array task, as sbatch takes it ("30", "2:00:00", "1-0"); default: datum_timeout times the batch, plus 10 minutes.'),
        options: strList('More sbatch options, as given on its command line, e.g. ["--account=lab", "--qos=short"].'),
      }),
    },
    identity: {
      enum: ['content', 'path'],
      description:
        '"content" (default): datums with identical input content share one result. "path": the matched names are part of the datum key too.',
    },
  }),
  $defs: {
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cpu: { type: 'number', exclusiveMinimum: 0, description: 'CPUs (fractions are rounded up on Slurm).' },
        memory: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?([KMGTP]i?)?$', description: 'Memory, in bytes with an SI suffix: "512M", "2G", "1.5Gi".' },
        gpu: {
          type: 'object',
          additionalProperties: false,
          required: ['number'],
          properties: { type: str('GPU type, e.g. "nvidia.com/gpu" or a Slurm gres type such as "a100".'), number: { type: 'integer', minimum: 0 } },
        },
        disk: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?([KMGTP]i?)?$', description: 'Local scratch space, e.g. "10G" (sbatch --tmp).' },
      },
    },
    input: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      description: 'Exactly one of pfs, cross, union, join, group.',
      properties: {
        pfs: {
          type: 'object',
          additionalProperties: false,
          required: ['repo', 'glob'],
          properties: props({
            repo: str('Directory of the dataset to read (relative to the dataset root), e.g. "raw/t1" or an upstream pipeline.'),
            glob: str('Pachyderm glob selecting datums: "/", "/*", "/*/*", "/**", "/(sub-*)".'),
            name: str('Name of this input for the command ($MINIPACH_IN_<name>); defaults to the repo\'s last component.'),
            branch: str('Accepted for Pachyderm compatibility; inputs always come from the branch being scheduled.'),
            join_on: str('Join key template, e.g. "$1".'),
            outer_join: { type: 'boolean', description: 'Also emit datums for this input\'s unmatched join keys.' },
            group_by: str('Group key template, e.g. "$1".'),
            empty_files: { type: 'boolean', description: 'Accepted for Pachyderm compatibility (no effect).' },
            lazy: { type: 'boolean', description: 'Accepted for Pachyderm compatibility (no effect).' },
          }),
        },
        cross: inputList('Every combination of one datum from each input.'),
        union: inputList('The datums of all inputs, side by side.'),
        join: inputList('Datums whose join_on keys are equal, one from each input.'),
        group: inputList('All datums with the same group_by key, across inputs, as one datum.'),
      },
    },
  },
};
