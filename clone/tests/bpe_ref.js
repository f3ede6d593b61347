// tests/bpe_ref.js — the reference side of kiln's BPE tests and bench, run with Node.js:
//   node tests/bpe_ref.js DIR encode TEXT IDS   js-tiktoken r50k_base (GPT-2) ids of the
//                                               file TEXT, one a line, into IDS
//   node tests/bpe_ref.js DIR stress OUT        a text of mixed scripts, digits, white space
//                                               and contractions (deterministic) into OUT
//   node tests/bpe_ref.js DIR bench TEXT REPS   encode MB/s on one thread, the best of REPS
// DIR: what tools/npm-bpe.sh prints.  Special tokens in the text are ordinary text, as in
// kiln (lib/data/bpe.h).
'use strict';
const fs = require('fs');
const [dir, mode, a, b] = process.argv.slice(2);
const { getEncoding } = require(dir + '/node_modules/js-tiktoken');
const enc = getEncoding('r50k_base');
const encode = text => enc.encode(text, [], []);
if (mode === 'encode') {
  fs.writeFileSync(b, encode(fs.readFileSync(a, 'utf8')).join('\n') + '\n');
} else if (mode === 'stress') {
  let seed = 12345;
  const rnd = n => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const pool = ['a', 'Z', 'é', 'ß', 'Ж', '中', '文', 'ا', '1', '9', '٣', '½', 'Ⅻ', ' ', '  ',
    '\n', '\t', '\r\n', '\u00a0', '\u3000', '\u2028', "'", "'s", "'t", "'re", "'ll", "'ve",
    "'m", "'d", "'S", '!', '?', '.', ',', '-', '😀', '👍🏽', '\u0301', '\ufeff', '\u0085', '$',
    '€', '<|endoftext|>', '   \n', ' 42', ' ok', " '", 'x\u200b', 'ǅ', 'ᾈ', '\u1680'];
  const out = [];
  for (let i = 0; i < 20000; i++) out.push(pool[rnd(pool.length)]);
  fs.writeFileSync(a, out.join(''));
} else if (mode === 'bench') {
  const text = fs.readFileSync(a, 'utf8'), bytes = Buffer.byteLength(text);
  let best = Infinity;
  for (let r = 0; r < Number(b || 3); r++) {
    const t0 = process.hrtime.bigint();
    encode(text);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log((bytes / 1e6 / best).toFixed(2));
} else {
  console.error('usage: node tests/bpe_ref.js DIR (encode TEXT IDS | stress OUT | bench TEXT REPS)');
  process.exit(2);
}
