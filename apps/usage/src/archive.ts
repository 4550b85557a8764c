import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BallastError, InvalidOptionError, nonEmptyString } from '@ballast/common';
import { type Duck, readParquet } from './duck.ts';
import { moveDurably, writeDurably } from './log-dir.ts';

/** One archived file, as the manifest lists it. */
export interface ArchiveFile {
  /** Object key within the bucket, e.g. `usage/raw/billing_period=2026-10/part-00000.parquet`. */
  key: string;
  bytes: number;
  rows: number;
  sha256: string;
}

/** The manifest of one billing period's archive: what verification checks the files against. */
export interface ArchiveManifest {
  format: 'ballast-usage-archive/1';
  billingPeriod: string;
  bucket: string;
  files: ArchiveFile[];
  rows: number;
  /** Column sums of the archived rows, a second check beyond row counts and hashes. */
  sums: { cpuUs: string; bytesIn: string; bytesOut: string };
  /**
   * Records the billing run claimed but left out because an earlier period's archive has
   * them already (a log replayed after its records were billed and removed from the store).
   */
  alreadyBilled: Array<{ recordId: string; billingPeriod: string }>;
}

/** The archive of a period does not match its manifest: nothing is removed from the store. */
export class ArchiveVerificationError extends BallastError {
  constructor(message: string) {
    super('ERR_BALLAST_ARCHIVE_MISMATCH', message);
  }
}

/**
 * Cold storage for raw usage records: zstd Parquet files and a manifest per billing period,
 * in an object-store bucket layout on disk:
 *
 * ```
 * <root>/<bucket>/usage/raw/billing_period=2026-10/part-00000.parquet
 * <root>/<bucket>/usage/raw/billing_period=2026-10/manifest.json
 * ```
 *
 * The same keys upload unchanged to an S3-compatible bucket (`aws s3 sync <root>/<bucket>
 * s3://<bucket>`), where Spark, Trino or ClickHouse read them as a Hive-partitioned table.
 * A manifest is written last, so a period whose manifest exists is complete.
 */
export class ColdStorage {
  readonly root: string;
  readonly bucket: string;

  constructor(root: string, bucket = 'ballast-usage') {
    this.root = nonEmptyString('coldDir', root);
    this.bucket = nonEmptyString('bucket', bucket);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new InvalidOptionError('bucket', 'an S3 bucket name (3 to 63 of a-z, 0-9, dot and dash)', bucket);
    }
  }

  /** Object key of a period's partition (no trailing slash). */
  partitionKey(billingPeriod: string): string {
    return `usage/raw/billing_period=${billingPeriod}`;
  }

  /** Path on disk of an object key. */
  path(key: string): string {
    return join(this.root, this.bucket, key);
  }

  /** Where work in progress is staged (same file system, so moving it in is a rename). */
  stagingDir(billingPeriod: string): string {
    return join(this.root, '.staging', `${billingPeriod}-${process.pid}`);
  }

  /** The manifest of a period, or undefined when its archive is not complete. */
  async manifest(billingPeriod: string): Promise<ArchiveManifest | undefined> {
    try {
      return JSON.parse(await readFile(this.path(`${this.partitionKey(billingPeriod)}/manifest.json`), 'utf8')) as ArchiveManifest;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Billing periods with a complete archive, sorted. */
  async periods(): Promise<string[]> {
    const dir = this.path('usage/raw');
    const names = await readdir(dir).catch(() => [] as string[]);
    const periods: string[] = [];
    for (const name of names.sort()) {
      const m = /^billing_period=(.+)$/.exec(name);
      if (m?.[1] && (await this.manifest(m[1]))) periods.push(m[1]);
    }
    return periods;
  }

  /** Paths of every file of the complete archives, except `exceptPeriod`'s. */
  async files(exceptPeriod?: string): Promise<string[]> {
    const paths: string[] = [];
    for (const period of await this.periods()) {
      if (period === exceptPeriod) continue;
      const manifest = (await this.manifest(period)) as ArchiveManifest;
      for (const file of manifest.files) paths.push(this.path(file.key));
    }
    return paths;
  }

  /** Moves a staged Parquet file into the period's partition, whole, and describes it for the manifest. */
  async publish(staged: string, billingPeriod: string, name: string, rows: number): Promise<ArchiveFile> {
    const key = `${this.partitionKey(billingPeriod)}/${name}`;
    const [bytes, sha256] = [(await stat(staged)).size, await sha256File(staged)];
    await moveDurably(staged, this.path(key));
    return { key, bytes, rows, sha256 };
  }

  /** Writes a period's manifest: the step that makes its archive complete. */
  async commit(manifest: ArchiveManifest): Promise<void> {
    await writeDurably(this.path(`${this.partitionKey(manifest.billingPeriod)}/manifest.json`), `${JSON.stringify(manifest, null, 2)}\n`);
  }

  /**
   * Checks a period's files against its manifest: present, the same size and SHA-256, and
   * (read back through DuckDB) the same row count and column sums.
   * @throws {ArchiveVerificationError} naming the first mismatch.
   */
  async verify(manifest: ArchiveManifest, duck: Duck): Promise<void> {
    for (const file of manifest.files) {
      const path = this.path(file.key);
      const bytes = await stat(path).then(
        (s) => s.size,
        () => -1,
      );
      if (bytes !== file.bytes)
        throw new ArchiveVerificationError(`${file.key}: ${bytes < 0 ? 'missing' : `${bytes} bytes`}, manifest says ${file.bytes}`);
      const sha256 = await sha256File(path);
      if (sha256 !== file.sha256) throw new ArchiveVerificationError(`${file.key}: SHA-256 ${sha256}, manifest says ${file.sha256}`);
    }
    const paths = manifest.files.map((f) => this.path(f.key));
    const [row] = await duck.all(`${SUMS_SQL} FROM ${readParquet(paths)}`);
    const read = { rows: String(row?.rows), cpuUs: String(row?.cpu), bytesIn: String(row?.bin), bytesOut: String(row?.bout) };
    const expected = { rows: String(manifest.rows), ...manifest.sums };
    for (const key of Object.keys(expected) as Array<keyof typeof expected>) {
      if (read[key] !== expected[key]) {
        throw new ArchiveVerificationError(
          `archive of ${manifest.billingPeriod}: ${key} reads ${read[key]}, manifest says ${expected[key]}`,
        );
      }
    }
  }
}

/** Row count and column sums of archived records (add `FROM …`): what a manifest vouches for. */
export const SUMS_SQL =
  'SELECT COUNT(*)::VARCHAR AS rows, COALESCE(SUM(cpu_us), 0)::VARCHAR AS cpu, COALESCE(SUM(bytes_in), 0)::VARCHAR AS bin, COALESCE(SUM(bytes_out), 0)::VARCHAR AS bout';

/** SHA-256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
