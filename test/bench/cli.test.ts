// The benchmarks' command lines (bench/cli.ts): a bad option, value or file
// ends a benchmark with one coded line on stderr and exit status 1, never a
// stack trace, before it starts anything (latency's daemon, rtp-calls' capture);
// benchArgs reads values, lists and flags and refuses what it does not know.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { benchArgs, type BenchArgsOptions, file, flag, int, list, num, oneOf, opt, positive, text, uint } from '../../bench/cli.js';

const bench = (name: string): string => fileURLToPath(new URL(`../../bench/${name}.js`, import.meta.url));
const { OTUS_DEBUG: _, ...env } = process.env;

describe('a benchmark given bad input', () => {
  const cases: [name: string, args: string[], message: RegExp][] = [
    ['sip', ['--nosuch'], /^unknown option --nosuch \(options: --calls, --rtp, --tcp, --call-records\)$/],
    ['rtp-calls', ['--calls', 'abc'], /^--calls: expected a positive integer, got "abc"$/],
    ['latency', ['--driver', 'nosuch'], /^--driver: expected one of af_packet_v3, xdp, got "nosuch"$/],
    ['decode', ['/nonexistent/calls.pcap'], /^\/nonexistent\/calls\.pcap: cannot read capture file/],
    ['memory', ['--calls', '10000,x', '--json'], /^--calls: expected a positive integer, got "x"$/],
    ['kafka', ['--formats', 'json,xml'], /^--formats: expected one of json, protobuf, got "xml"$/],
    ['run', ['--quick', '--only', 'nosuch'], /^--only: expected one of decode-large, .*, got "nosuch"$/],
    ['gen-calls', ['--calls', '3'], /^--out FILE is required/],
  ];
  for (const [name, args, message] of cases) {
    it(`bench/${name} ${args.join(' ')}: one coded line, exit 1, nothing started`, () => {
      const r = spawnSync(process.execPath, [bench(name), ...args], { encoding: 'utf8', timeout: 20_000, env });
      assert.equal(r.signal, null, `ended on its own; stderr: ${r.stderr}`);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^bench/${name}: .+ \\[OTUS_ERR_[A-Z_]+\\]\\n$`), 'exactly one coded line');
      assert.doesNotMatch(r.stderr, /^ {4}at /m);
      assert.match(r.stderr.slice(`bench/${name}: `.length).replace(/ \[OTUS_ERR_[A-Z_]+\]\n$/, ''), message);
      assert.equal(r.stdout, '');
    });
  }
});

describe('benchArgs', () => {
  const spec = {
    calls: opt(1000, int),
    fill: opt(0.5, positive),
    ramp: opt(null, num),
    rtp: opt(2, uint),
    task: opt('', text),
    stats: opt('', oneOf('on', 'only')),
    workers: opt([1, 2], list(int)),
    formats: opt(['json', 'protobuf'], list(oneOf('json', 'protobuf'))),
    'node-args': opt('', text),
    json: flag,
  };
  const read = (...argv: string[]): ReturnType<typeof benchArgs<typeof spec>> => benchArgs(spec, { argv });
  const bad = (message: string | RegExp, argv: string[], o: BenchArgsOptions = {}): void => {
    assert.throws(() => benchArgs(spec, { ...o, argv }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'OTUS_ERR_BAD_ARGUMENT');
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    });
  };

  it('gives the defaults when nothing is given', () => {
    assert.deepEqual({ ...read() }, { calls: 1000, fill: 0.5, ramp: null, rtp: 2, task: '', stats: '', workers: [1, 2], formats: ['json', 'protobuf'], 'node-args': '', json: false, _: [] });
  });

  it('reads values, --name=value, lists and flags', () => {
    const o = read('--calls', '10', '--fill=0.25', '--ramp', '0', '--rtp', '0', '--task', 'a.yml', '--stats', 'only', '--workers', '3,1', '--formats', 'protobuf', '--json');
    assert.deepEqual({ ...o }, { calls: 10, fill: 0.25, ramp: 0, rtp: 0, task: 'a.yml', stats: 'only', workers: [3, 1], formats: ['protobuf'], 'node-args': '', json: true, _: [] });
    assert.equal(read('--calls', '1e3').calls, 1000, 'numbers as Number() reads them');
  });

  it('takes a value that starts with -- unless it is one of the options', () => {
    assert.equal(read('--node-args', '--max-semi-space-size=2')['node-args'], '--max-semi-space-size=2');
    assert.equal(read('--node-args=--max-semi-space-size=2 --trace-gc')['node-args'], '--max-semi-space-size=2 --trace-gc');
    bad('--task needs a value', ['--task', '--json']);
    bad('--task needs a value', ['--task', '--calls=3']);
  });

  it('refuses unknown options, naming the known ones', () => {
    bad('unknown option --nosuch (options: --calls, --fill, --ramp, --rtp, --task, --stats, --workers, --formats, --node-args, --json)', ['--nosuch']);
    bad(/^unknown option --nosuch \(/, ['--calls', '1', '--nosuch=2']);
    bad(/^unknown option -c \(/, ['-c', '1']);
    bad(/^unknown option --constructor \(/, ['--constructor', '1']);
  });

  it('refuses a missing value, a flag with a value, an option given twice', () => {
    bad('--calls needs a value', ['--calls']);
    bad('--json takes no value, got "1"', ['--json=1']);
    bad('--calls given more than once', ['--calls', '1', '--calls', '2']);
  });

  it('refuses numbers that are not what the option takes', () => {
    bad('--calls: expected a positive integer, got "abc"', ['--calls', 'abc']);
    bad('--calls: expected a positive integer, got ""', ['--calls', '']);
    bad('--calls: expected a positive integer, got "0"', ['--calls', '0']);
    bad('--calls: expected a positive integer, got "1.5"', ['--calls', '1.5']);
    bad('--fill: expected a positive number, got "0"', ['--fill', '0']);
    bad('--fill: expected a positive number, got "Infinity"', ['--fill', 'Infinity']);
    bad('--ramp: expected a non-negative number, got "-1"', ['--ramp=-1']);
    bad('--rtp: expected a non-negative integer, got " "', ['--rtp', ' ']);
  });

  it('refuses a choice not offered, and a bad element of a list', () => {
    bad('--stats: expected one of on, only, got "off"', ['--stats', 'off']);
    bad('--workers: expected a positive integer, got "x"', ['--workers', '1,x']);
    bad('--workers: expected a positive integer, got ""', ['--workers', '1,,2']);
    bad('--formats: expected one of json, protobuf, got "xml"', ['--formats', 'json,xml']);
  });

  it('takes positional arguments only where the benchmark does', () => {
    bad('unexpected argument "calls.pcap" (options: --calls, --fill, --ramp, --rtp, --task, --stats, --workers, --formats, --node-args, --json)', ['calls.pcap']);
    assert.deepEqual(benchArgs(spec, { argv: ['a.pcap', '--calls', '5'], positionals: 'FILE' })._, ['a.pcap']);
    assert.deepEqual(benchArgs(spec, { argv: ['--calls', '5', '--', '--a.pcap'], positionals: 'FILE' })._, ['--a.pcap']);
    bad('unexpected argument "b.pcap" (takes one FILE)', ['a.pcap', 'b.pcap'], { positionals: 'FILE' });
    assert.deepEqual(benchArgs(spec, { argv: ['a', 'b'], positionals: 'FILE...' })._, ['a', 'b']);
  });

  it("leaves a script's own child invocation (an internal first argument) unread", () => {
    const o = benchArgs(spec, { argv: ['--worker', '{"calls": "x"}', '--nosuch'], internal: ['--worker'] });
    assert.equal(o.calls, 1000);
    assert.deepEqual(o._, ['--worker', '{"calls": "x"}', '--nosuch']);
    bad(/^unknown option --worker /, ['--calls', '1', '--worker', '{}'], { internal: ['--worker'] });
  });

  it('file: a path that exists', () => {
    const spec2 = { pcap: opt('', file) };
    assert.equal(benchArgs(spec2, { argv: ['--pcap', fileURLToPath(import.meta.url)] }).pcap, fileURLToPath(import.meta.url));
    assert.equal(benchArgs(spec2, { argv: [] }).pcap, '');
    assert.throws(() => benchArgs(spec2, { argv: ['--pcap', '/nonexistent/x.pcap'] }), { code: 'OTUS_ERR_BAD_ARGUMENT', message: '--pcap: no such file: /nonexistent/x.pcap' });
  });
});
