// Go-template subset (src/cli/template.ts): expected outputs are what Go's text/template with Docker's
// functions prints for the same template and data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STRICT, TemplateError, execute, parseTemplate, renderList, sprintf, tabwrite } from '../../src/cli/template.js';

const run = (src: string, data: unknown) => execute(parseTemplate(src), data);

const ctr = {
  Id: 'abc123', Name: '/web', State: { Status: 'running', Running: true, Pid: 4242, ExitCode: 0 },
  Config: { Env: ['A=1', 'B=2'], Labels: { tier: 'front', app: 'shop' }, Hostname: 'abc' },
  NetworkSettings: {
    IPAddress: '', Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '32768' }] },
    Networks: { front: { IPAddress: '172.18.0.2', Aliases: ['web'] }, back: { IPAddress: '172.19.0.3', Aliases: null } },
  },
};

test('fields, nested fields, the most common address idiom', () => {
  assert.equal(run('{{.Name}}', ctr), '/web');
  assert.equal(run('{{.State.Pid}}', ctr), '4242');
  assert.equal(run('{{.State.Running}}', ctr), 'true');
  // Map ranges go by sorted key, as Go's: back before front.
  assert.equal(run('{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', ctr), '172.19.0.3172.18.0.2');
  assert.equal(run('{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}', ctr), 'back=172.19.0.3 front=172.18.0.2 ');
  assert.equal(run('{{(index .NetworkSettings.Networks "front").IPAddress}}', ctr), '172.18.0.2');
  assert.equal(run('{{index .NetworkSettings.Networks.front.Aliases 0}}', ctr), 'web');
  assert.equal(run('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', ctr), '32768');
});

test('missing keys and nil print as Go does; a field of nothing is an error', () => {
  assert.equal(run('{{.Nope}}', ctr), '<no value>');
  assert.equal(run('{{.NetworkSettings.Networks.back.Aliases}}', ctr), '<nil>');
  assert.throws(() => run('{{.Nope.Deeper}}', ctr), /nil pointer evaluating interface \{\}\.Deeper/);
  assert.throws(() => run('{{.Name.X}}', ctr), /can't evaluate field X in type string/);
});

test('functions: json join printf upper lower println index len split title', () => {
  assert.equal(run('{{json .Config.Labels}}', ctr), '{"tier":"front","app":"shop"}');
  assert.equal(run('{{json .NetworkSettings.Networks.back.Aliases}}', ctr), 'null');
  assert.equal(run('{{join .Config.Env ","}}', ctr), 'A=1,B=2');
  assert.equal(run('{{printf "%s:%d" .Name .State.Pid}}', ctr), '/web:4242');
  assert.equal(run('{{printf "%-6s|%5s|%05d|%q|%v|%%" "ab" "cd" 42 "x" true}}', {}), 'ab    |   cd|00042|"x"|true|%');
  assert.equal(run('{{upper .State.Status}} {{lower "AbC"}} {{title "hello world"}}', ctr), 'RUNNING abc Hello World');
  assert.equal(run('{{println .Name .State.Pid}}', ctr), '/web 4242\n');
  assert.equal(run('{{len .Config.Env}} {{len .Config.Labels}} {{len "héllo"}}', ctr), '2 2 6');
  assert.equal(run('{{index (split "a:b:c" ":") 1}}', {}), 'b');
  assert.equal(run('{{.Name | printf "%s!"}}', ctr), '/web!');
  assert.equal(run('{{truncate "abcdef" 3}}', {}), 'abc');
  assert.equal(sprintf('%d %s', [1]), '1 %!s(MISSING)');
});

test('if / else if / else, with, variables, comparisons, trim markers, comments', () => {
  assert.equal(run('{{if .State.Running}}up{{else}}down{{end}}', ctr), 'up');
  assert.equal(run('{{if eq .State.Status "exited"}}x{{else if eq .State.Status "running"}}r{{else}}?{{end}}', ctr), 'r');
  assert.equal(run('{{with .Config.Labels.tier}}tier={{.}}{{else}}none{{end}}', ctr), 'tier=front');
  assert.equal(run('{{with .Config.Labels.nope}}{{.}}{{else}}none{{end}}', ctr), 'none');
  assert.equal(run('{{$n := .Name}}{{range .Config.Env}}{{$n}}:{{.}} {{end}}', ctr), '/web:A=1 /web:B=2 ');
  assert.equal(run('{{range .Config.Env}}{{$.Name}}{{end}}', ctr), '/web/web');
  assert.equal(run('{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}', ctr), 'A=1,B=2');
  assert.equal(run('a  {{- " b " -}}  c', {}), 'a b c');
  assert.equal(run('{{/* a comment */}}x', {}), 'x');
  assert.equal(run('{{range .None}}x{{else}}empty{{end}}', {}), 'empty');
  assert.equal(run('{{if and .A (not .B)}}y{{end}}{{if or .B .C}}z{{end}}', { A: 1, B: 0, C: 'c' }), 'yz');
  assert.equal(run('{{if gt .State.Pid 100}}big{{end}} {{if lt 1 2}}lt{{end}} {{ne 1 2}}', ctr), 'big lt true');
});

test('unsupported or broken templates fail loudly, naming the problem', () => {
  const cases: Array<[string, RegExp]> = [
    ['{{.Name', /unclosed action/],
    ['{{if .A}}x', /unexpected EOF/],
    ['{{end}}', /unexpected \{\{end\}\}/],
    ['{{nosuchfunc .A}}', /function "nosuchfunc" not defined/],
    ['{{define "x"}}y{{end}}', /"define" is not supported/],
    ['{{template "x"}}', /"template" is not supported/],
    ['{{html .A}}', /"html" is not supported/],
    ['{{.A | }}', /missing command after \|/],
    ['{{"unterminated}}', /unterminated quoted string|unclosed action/],
    ['{{printf "%z" 1}}', /verb %z is not supported/],
    ['{{$undefined}}', /undefined variable: \$undefined/],
  ];
  for (const [src, re] of cases) {
    assert.throws(() => run(src, { A: 1 }), (e: unknown) => e instanceof TemplateError && re.test(e.message), src);
  }
});

test('strict rows (ps/ls "methods"): an unknown field is an error; methods take arguments', () => {
  const row = { Names: 'web', Label: (k: unknown) => ({ tier: 'front' } as Record<string, string>)[String(k)] ?? '', [STRICT]: true };
  assert.equal(run('{{.Names}} {{.Label "tier"}}', row), 'web front');
  assert.throws(() => run('{{.Nmes}}', row), /can't evaluate field Nmes/);
});

test('tabwriter as Docker configures it (minwidth 10, padding 3)', () => {
  assert.equal(tabwrite('NAME\tSTATUS\nweb\tUp 2 seconds\nlong-name-here\tExited (0)\n'),
    'NAME             STATUS\nweb              Up 2 seconds\nlong-name-here   Exited (0)\n');
  assert.equal(tabwrite('a\tb\n'), 'a         b\n');
});

test('renderList: table with headers, plain templates per row, json lines, \\t escapes', () => {
  const lf = { defaultTable: '{{.ID}}\t{{.Name}}', headers: { ID: 'NETWORK ID', Name: 'NAME' } };
  const rows = [{ ID: '0123456789ab', Name: 'front' }, { ID: 'ba9876543210', Name: 'b' }];
  assert.equal(renderList('table', rows, lf), 'NETWORK ID     NAME\n0123456789ab   front\nba9876543210   b\n');
  assert.equal(renderList('table {{.Name}}\\t{{.ID}}', rows, lf), 'NAME      NETWORK ID\nfront     0123456789ab\nb         ba9876543210\n');
  assert.equal(renderList('{{.Name}}', rows, lf), 'front\nb\n');
  assert.equal(renderList('{{json .}}', rows, lf), '{"ID":"0123456789ab","Name":"front"}\n{"ID":"ba9876543210","Name":"b"}\n');
  assert.equal(renderList('json', rows, lf), '{"ID":"0123456789ab","Name":"front"}\n{"ID":"ba9876543210","Name":"b"}\n');
  assert.equal(renderList('table', [], lf), 'NETWORK ID   NAME\n');
  assert.throws(() => renderList('{{.Nope}}', rows, lf), /can't evaluate field Nope/);
});
