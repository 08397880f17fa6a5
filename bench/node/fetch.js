// N GETs with Node's fetch from C concurrent workers; prints requests per second.
const [url, total, concurrency] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
let issued = 0;
async function worker() {
  while (issued < total) {
    issued++;
    const res = await fetch(url);
    await res.arrayBuffer();
  }
}
(async () => {
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  console.log((total / ((performance.now() - start) / 1000)).toFixed(1));
})();
