import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonLinesParser, parseEventLine, type TrainerEvent } from '../../lib/train/events.js';

function collect() {
  const events: TrainerEvent[] = [];
  const text: string[] = [];
  const parser = new JsonLinesParser({ onEvent: (e) => events.push(e), onText: (l) => text.push(l) });
  return { parser, events, text };
}

describe('trainer JSON lines', () => {
  it('joins events split across chunks, also inside a multi-byte character', () => {
    const { parser, events, text } = collect();
    const line =
      '{"event":"warning","message":"größe ✓"}\n{"event":"step","epoch":1,"step":2,"steps":4,"loss":0.5,"lr":0.01,"imagesPerSecond":3}\n';
    const bytes = Buffer.from(line);
    // every split point, including inside 'ö' and '✓'
    for (let cut = 1; cut < bytes.length; cut += 7) {
      parser.push(bytes.subarray(0, cut));
      parser.push(bytes.subarray(cut));
    }
    parser.end();
    assert.equal(text.length, 0);
    assert.equal(events.length, 2 * Math.ceil((bytes.length - 1) / 7));
    assert.deepEqual(events[0], { event: 'warning', message: 'größe ✓' });
    assert.equal(events[1]!.event, 'step');
  });

  it('passes non-JSON, truncated and unknown-event lines on as text, and skips blank lines', () => {
    const { parser, events, text } = collect();
    parser.push('Downloading weights...\r\n\n{"event":"epoch","epoch":1');
    parser.push('\n[1, 2]\n{"event":"nope"}\n{"event":"done","epochs":1,"metrics":{},"bestEpoch":1}');
    parser.end();
    assert.deepEqual(text, [
      'Downloading weights...',
      '{"event":"epoch","epoch":1',
      '[1, 2]',
      '{"event":"nope"}',
    ]);
    assert.deepEqual(events, [{ event: 'done', epochs: 1, metrics: {}, bestEpoch: 1 }]);
  });

  it('does not buffer an endless line without bound', () => {
    const texts: string[] = [];
    const parser = new JsonLinesParser(
      { onEvent: () => assert.fail('no event'), onText: (l) => texts.push(l) },
      100,
    );
    parser.push('x'.repeat(250));
    parser.push('y\n');
    assert.equal(texts.length, 2);
    assert.equal(texts.join('').length, 251);
  });

  it('recognises a single event line', () => {
    assert.equal(parseEventLine('  {"event":"env","gpus":2}  ')?.event, 'env');
    assert.equal(parseEventLine('{"event":1}'), undefined);
    assert.equal(parseEventLine('null'), undefined);
  });
});
