// JSON.stringify/JSON.parse on the same documents as bench/scripts/json_codec.luau;
// prints "<case> <microseconds per op>" lines.
const small = [];
for (let i = 1; i <= 50; i++) {
  small.push({ id: i, name: "item " + i, price: i * 1.5, tags: ["a", "b"], active: i % 2 === 0 });
}
function measure(label, seconds, fn) {
  fn();
  let runs = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  do {
    fn();
    runs++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < seconds);
  console.log(`${label} ${((elapsed / runs) * 1e6).toFixed(2)}`);
}

const smallText = JSON.stringify(small);
// As in json_codec.luau: the 50-item cases run before the big document exists; the
// last case runs one with it alive.
measure("small-encode", 1, () => JSON.stringify(small));
measure("small-decode", 1, () => JSON.parse(smallText));

const big = [];
for (let i = 1; i <= 5000; i++) {
  big.push({
    id: i,
    name: `record "${i}" café ✓`,
    score: i / 7,
    ratio: i * 0.001 + 0.5,
    description: 'Lorem "ipsum" — dolor.',
    nested: {
      values: [i, i + 1, i + 2],
      point: { x: i * 1.25, y: -i / 3, label: "p\\q" },
      flags: [true, false],
    },
  });
}

const bigText = JSON.stringify(big);
console.log(`# sizes: small ${Buffer.byteLength(smallText)} bytes, big ${Buffer.byteLength(bigText)} bytes`);
measure("big-encode", 2, () => JSON.stringify(big));
measure("big-decode", 2, () => JSON.parse(bigText));
// As in json_codec.luau: the same objects built by object literals, no parsing;
// only the unique names are made from bytes.
const nameBytes = Buffer.from(big.map((r) => r.name).join(""));
const offsets = [];
let total = 0;
for (const r of big) {
  offsets.push(total);
  total += Buffer.byteLength(r.name);
}
offsets.push(total);
const description = big[0].description;
const label = big[0].nested.point.label;
measure("big-floor", 2, () => {
  const out = new Array(big.length);
  for (let i = 1; i <= big.length; i++) {
    out[i - 1] = {
      id: i,
      name: nameBytes.toString("utf8", offsets[i - 1], offsets[i]),
      score: i / 7,
      ratio: i * 0.001 + 0.5,
      description,
      nested: { values: [i, i + 1, i + 2], point: { x: i * 1.25, y: -i / 3, label }, flags: [true, false] },
    };
  }
  return out;
});
measure("small-decode-heap", 1, () => JSON.parse(smallText));
