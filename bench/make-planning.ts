/** `tsx bench/make-planning.ts DIR N`: makes the planning bench's dataset of N datums in DIR, to profile by hand. */
import { planningDataset } from './workloads.js';

const [root, n] = process.argv.slice(2);
process.stdout.write(`${await planningDataset(root!, Number(n))}\n`);
