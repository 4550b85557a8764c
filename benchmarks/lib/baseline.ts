/**
 * The packages as they were before a change, importable side by side with the current
 * ones, so a benchmark can measure both in one run: the commit before the policy contract
 * (`BASELINE_REF` overrides it) and the commit before the hot-path work ({@link
 * HOTPATH_BASELINE_REF}, `HOTPATH_BASELINE_REF` overrides it). The sources at a commit are
 * extracted with `git archive` into `benchmarks/.baseline/<sha>/` (git-ignored) with a
 * `node_modules/@ballast/*` of their own, so the old packages import each other, not the
 * current ones; third-party dependencies resolve from the repository as usual.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The commit whose packages are the baseline: the last one before the policy contract. */
export const DEFAULT_BASELINE_REF = 'd7f93a40df3e91993f188034e4b6387a566fd076';

/** The last commit before the hot-path work (one promise per chain call): "today" for its failure paths. */
export const HOTPATH_BASELINE_REF = 'e9e083d';
const PACKAGES = ['common', 'retry', 'circuit-breaker', 'backpressure', 'partitioning', 'load-balancer', 'failure-detector'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The baseline commit in use and where its packages were extracted, or why there is none. */
export type Baseline = { ref: string; sha: string; dir: string } | { ref: string; unavailable: string };

const cached = new Map<string, Baseline>();

/**
 * Extracts the packages at `ref` once per run (and reuses an earlier extraction).
 * @param ref a commit. @default `BASELINE_REF`, or the commit before the policy contract
 */
export function baseline(ref: string = process.env.BASELINE_REF ?? DEFAULT_BASELINE_REF): Baseline {
  const known = cached.get(ref);
  if (known) return known;
  let result: Baseline;
  try {
    const sha = execFileSync('git', ['-C', root, 'rev-parse', '--verify', `${ref}^{commit}`], { encoding: 'utf8' }).trim();
    const dir = join(root, 'benchmarks', '.baseline', sha);
    if (!existsSync(join(dir, 'node_modules'))) {
      mkdirSync(dir, { recursive: true });
      const archive = execFileSync('git', ['-C', root, 'archive', sha, ...PACKAGES.map((p) => `packages/${p}`)], {
        maxBuffer: 256 * 1024 * 1024,
      });
      execFileSync('tar', ['-x', '-C', dir], { input: archive });
      mkdirSync(join(dir, 'node_modules', '@ballast'), { recursive: true });
      for (const name of PACKAGES) {
        if (existsSync(join(dir, 'packages', name)))
          symlinkSync(join('..', '..', 'packages', name), join(dir, 'node_modules', '@ballast', name));
      }
    }
    result = { ref, sha, dir };
  } catch (error) {
    result = { ref, unavailable: error instanceof Error ? (error.message.split('\n')[0] ?? String(error)) : String(error) };
  }
  cached.set(ref, result);
  return result;
}

/** The commit before the hot-path work, or `HOTPATH_BASELINE_REF`. */
export function hotpathBaseline(): Baseline {
  return baseline(process.env.HOTPATH_BASELINE_REF ?? HOTPATH_BASELINE_REF);
}

/**
 * Imports a baseline package's sources (`@ballast/<name>` at the commit `ref`), or
 * undefined when that commit is unavailable. @default ref: see {@link baseline}
 */
export async function importBaseline<T>(name: string, ref?: string): Promise<T | undefined> {
  const b = ref === undefined ? baseline() : baseline(ref);
  if ('unavailable' in b) return undefined;
  return (await import(pathToFileURL(join(b.dir, 'packages', name, 'src', 'index.ts')).href)) as T;
}
