import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from './journal';
import type { SpendRecord } from './types';

function record(requestId: string): SpendRecord {
  return {
    requestId,
    customerId: 'c',
    apiKeyId: 'k',
    keyAlias: null,
    model: 'm',
    deploymentId: 'd',
    provider: 'mock',
    endpoint: 'chat',
    promptTokens: 1,
    completionTokens: 2,
    cachedPromptTokens: 0,
    cacheWriteTokens: 0,
    costPico: 12_345_678_901_234_567_890n,
    chargePico: 3n,
    costSource: 'provider',
    status: 'success',
    periodStartMs: 0,
    counters: [],
    createdAtMs: 1,
  } as SpendRecord;
}

const lines = (directory: string) => readdirSync(directory).flatMap((name) => readFileSync(join(directory, name), 'utf8').split('\n').filter(Boolean));

describe('Journal', () => {
  it('writes the records of one turn together at its end, and each append resolves once its record is in the file', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tollgate-journal-'));
    const journal = new Journal(directory);
    const appended = [journal.append(record('a')), journal.append(record('b'))];
    expect(lines(directory)).toEqual([]);
    await Promise.all(appended);
    expect(lines(directory).map((line) => JSON.parse(line).requestId)).toEqual(['a', 'b']);
    const [path] = journal.seal();
    expect(Journal.read(path!).map((r) => [r.requestId, r.costPico])).toEqual([
      ['a', 12_345_678_901_234_567_890n],
      ['b', 12_345_678_901_234_567_890n],
    ]);
    journal.close();
  });

  it('seals a segment with the records appended this turn in it (a ledger flush mid-turn)', () => {
    const directory = mkdtempSync(join(tmpdir(), 'tollgate-journal-'));
    const journal = new Journal(directory);
    void journal.append(record('mid-turn'));
    const segments = journal.seal();
    expect(segments).toHaveLength(1);
    expect(Journal.read(segments[0]!).map((r) => r.requestId)).toEqual(['mid-turn']);
    journal.close();
  });
});
