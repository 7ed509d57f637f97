import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { endSessions, startSession, type HarnessOptions } from '../../../test/smtp/harness.js';

/*
 * Transcript tests in Postfix's spirit: transcripts/*.txt hold "C:" lines (sent, consecutive ones in one
 * write, each with CRLF) and "S:" lines (expected reply lines, "*" matching anything). An optional first
 * line "@ {json}" gives harness options.
 */

afterEach(endSessions);

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'transcripts');

interface Step {
  send: string;
  expect: string[];
}

function parse(text: string): { options: HarnessOptions; steps: Step[] } {
  let options: HarnessOptions = {};
  const steps: Step[] = [{ send: '', expect: [] }];
  for (const line of text.split('\n')) {
    if (line.startsWith('@ ')) options = JSON.parse(line.slice(2)) as HarnessOptions;
    else if (line.startsWith('C:')) {
      if (steps.at(-1)!.expect.length > 0) steps.push({ send: '', expect: [] });
      steps.at(-1)!.send += `${line.slice(3)}\r\n`;
    } else if (line.startsWith('S:')) steps.at(-1)!.expect.push(line.slice(3));
  }
  return { options, steps };
}

const toRegExp = (pattern: string): RegExp => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);

for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test(`transcript ${file}`, async () => {
    const { options, steps } = parse(readFileSync(join(dir, file), 'utf8'));
    const h = startSession(options);
    let seen = 0;
    for (const step of steps) {
      if (step.send) h.client.send(step.send);
      const want = seen + step.expect.length;
      await h.client.until(() => h.client.received.split('\r\n').length - 1 >= want, 2000, `${step.expect.length} lines after ${JSON.stringify(step.send)}`);
      const lines = h.client.received.split('\r\n').slice(seen, want);
      step.expect.forEach((pattern, i) => assert.match(lines[i] ?? '', toRegExp(pattern), `${file}: after ${JSON.stringify(step.send)}`));
      seen = want;
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.client.received.split('\r\n').length - 1, seen, 'no unexpected reply lines');
  });
}
