#!/usr/bin/env node
// Jitsi-like meeting participants: strophe.js (the XMPP library Jitsi Meet uses) under Node,
// over XMPP-over-WebSocket (RFC 7395) or BOSH (XEP-0206). One process runs many participants.
//
// Each participant connects to its URL (ws://HOST:PORT/xmpp-websocket?room=ROOM or
// http://HOST:PORT/http-bind?room=ROOM), logs in (SASL ANONYMOUS, or a JID and password), joins
// ROOM@MUC as its nick, and waits until it has seen the presence of `expect` occupants (itself
// included) or the timeout. Then, for the whole process: an optional chat round (each joined
// participant sends one groupchat message and waits for those of the others of its room), then
// either leave, or hold and obey commands read from stdin (one JSON object per line).
//
// Usage:
//   node participant.mjs --url ws://127.0.0.1:5280/xmpp-websocket --room r1 --count 5 [--chat]
//   node participant.mjs --plan '{"participants": [...], ...}'     (or --plan-file FILE)
// Options (also plan keys): --domain (meet.example.com) --muc (conference.<domain>)
//   --timeout SECONDS (20) --resolve ADDRESS (every host name in a URL connects to ADDRESS, so a
//   URL can carry the Host header a route needs) --chat --hold --jid --password --nick PREFIX
//   --expect N (default: --count)
// Plan: {"domain", "muc", "timeout", "resolve", "chat", "hold", "participants": [{"id", "url",
//   "room", "nick", "expect", "jid", "password"}]}; a url without "?" gets "?room=ROOM".
//
// Output, one JSON object per line on stdout:
//   {"event":"joined","id","room","nick","transport","jid","ok","occupants":[nicks],"error","ms"}
//   {"event":"chat","id","room","nick","ok","received":[nicks],"missing":[nicks]}
//   {"event":"ready"}                 (hold: after the join and chat phases)
//   {"event":"status","participants":[{"id","room","connected"}]}
//   {"event":"left","id"}  {"event":"done","joined":N,"failed":N}
// Commands (hold): {"cmd":"chat","ids":[...]|null,"timeout":s} (then {"event":"chat-done"}),
//   {"cmd":"status"}, {"cmd":"join","participants":[...]} (then {"event":"join-done"}),
//   {"cmd":"leave"} (or end of stdin): leave, print done, exit 0.
// Exit status: 0 when every participant joined (and chatted, with --chat), 1 otherwise, 2 on
// bad arguments.

import { Strophe, $pres, $msg } from 'strophe.js';
import WS from 'ws';
import XHR2 from 'xhr2';
import http from 'node:http';
import readline from 'node:readline';

const NS_MUC = 'http://jabber.org/protocol/muc';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

function out(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

function parseArgs(argv) {
    const o = {};
    const flags = new Set(['chat', 'hold']);
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
        const k = a.slice(2);
        if (flags.has(k)) { o[k] = true; continue; }
        if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
        o[k] = argv[++i];
    }
    return o;
}

async function loadPlan(args) {
    let plan;
    if (args.plan) plan = JSON.parse(args.plan);
    else if (args['plan-file']) {
        const fs = await import('node:fs');
        plan = JSON.parse(fs.readFileSync(args['plan-file'], 'utf8'));
    } else {
        if (!args.url || !args.room) throw new Error('give --plan, --plan-file, or --url and --room');
        const count = parseInt(args.count || '1', 10);
        const prefix = args.nick || 'p';
        plan = { participants: [] };
        for (let i = 0; i < count; i++) {
            plan.participants.push({
                id: `${args.room}-${i}`, url: args.url, room: args.room, nick: `${prefix}${i}`,
                expect: parseInt(args.expect || String(count), 10),
                jid: args.jid, password: args.password,
            });
        }
    }
    for (const k of ['domain', 'muc', 'resolve']) if (args[k]) plan[k] = args[k];
    if (args.timeout) plan.timeout = parseFloat(args.timeout);
    if (args.chat) plan.chat = true;
    if (args.hold) plan.hold = true;
    plan.domain = plan.domain || 'meet.example.com';
    plan.muc = plan.muc || `conference.${plan.domain}`;
    plan.timeout = plan.timeout || 20;
    return plan;
}

// Host names in URLs resolve to `address`: the URL's host then travels as the Host header.
function installResolver(address) {
    const family = address.includes(':') ? 6 : 4;
    const lookup = (hostname, options, cb) => {
        if (typeof options === 'function') { cb = options; options = {}; }
        if (options && options.all) cb(null, [{ address, family }]);
        else cb(null, address, family);
    };
    class ResolvingWebSocket extends WS {
        constructor(url, protocols, opts = {}) {
            super(url, protocols, { ...opts, lookup });
        }
    }
    globalThis.WebSocket = ResolvingWebSocket;
    agentOptions = { ...agentOptions, lookup };
}

// xhr2 has no responseXML, and strophe.js 5.0.0 drops the document it parses from responseText
// itself (Bosh Request.getResponse), so give the response a DOM as a browser's XHR would.
// Connections are kept alive and pooled per URL (so per room), as a browser tab's would be:
// one process stands for many browsers, which never share a connection across meetings.
const agents = new Map();
let agentOptions = { keepAlive: true };
class XHR extends XHR2 {
    open(method, url, ...rest) {
        super.open(method, url, ...rest);
        if (!agents.has(url)) agents.set(url, new http.Agent(agentOptions));
        this.nodejsHttpAgent = agents.get(url);
    }

    get responseXML() {
        if (this.readyState !== 4 || !this.responseText) return null;
        try {
            return new DOMParser().parseFromString(this.responseText, 'text/xml');
        } catch (e) {
            return null;
        }
    }
}

class Participant {
    constructor(spec, plan) {
        this.id = spec.id;
        this.room = spec.room;
        this.nick = spec.nick;
        this.expect = spec.expect || 1;
        this.roomJid = `${spec.room}@${plan.muc}`.toLowerCase();
        this.url = spec.url.includes('?') ? spec.url : `${spec.url}?room=${encodeURIComponent(spec.room)}`;
        this.transport = /^wss?:/.test(this.url) ? 'websocket' : 'bosh';
        this.jid = spec.jid || plan.domain;
        this.password = spec.password || null;
        this.occupants = new Set();
        this.messages = [];          // {nick, body}
        this.waiters = new Set();
        this.connected = false;
        this.joined = false;
        this.error = null;
        this.boundJid = null;
    }

    notify() {
        for (const w of [...this.waiters]) w();
    }

    waitFor(pred, ms) {
        return new Promise((resolve) => {
            if (pred()) return resolve(true);
            const check = () => {
                if (pred()) { done(true); }
            };
            const timer = setTimeout(() => done(false), ms);
            const done = (v) => {
                clearTimeout(timer);
                this.waiters.delete(check);
                resolve(v);
            };
            this.waiters.add(check);
        });
    }

    onPresence(p) {
        const from = (p.getAttribute('from') || '');
        const bare = Strophe.getBareJidFromJid(from).toLowerCase();
        if (bare !== this.roomJid) return true;
        const nick = Strophe.getResourceFromJid(from);
        const type = p.getAttribute('type');
        if (type === 'error') {
            const cond = p.getElementsByTagName('error')[0];
            this.error = `presence error from ${from}: ${cond ? new XMLSerializer().serializeToString(cond) : '?'}`;
        } else if (type === 'unavailable') {
            this.occupants.delete(nick);
        } else if (nick) {
            this.occupants.add(nick);
            for (const s of p.getElementsByTagName('status')) {
                if (s.getAttribute('code') === '110') this.joined = true;
            }
        }
        this.notify();
        return true;
    }

    onMessage(m) {
        if (m.getAttribute('type') !== 'groupchat') return true;
        const from = m.getAttribute('from') || '';
        if (Strophe.getBareJidFromJid(from).toLowerCase() !== this.roomJid) return true;
        if (m.getElementsByTagName('delay').length) return true;   // room history
        const body = m.getElementsByTagName('body')[0];
        if (body) this.messages.push({ nick: Strophe.getResourceFromJid(from), body: Strophe.getText(body) });
        this.notify();
        return true;
    }

    connect(timeoutMs) {
        return new Promise((resolve) => {
            const conn = new Strophe.Connection(this.url, {});
            this.conn = conn;
            conn.addHandler((p) => this.onPresence(p), null, 'presence');
            conn.addHandler((m) => this.onMessage(m), null, 'message');
            const timer = setTimeout(() => {
                this.error = this.error || `no session within ${timeoutMs} ms`;
                resolve(false);
            }, timeoutMs);
            conn.connect(this.jid, this.password, (status, condition) => {
                const S = Strophe.Status;
                if (status === S.CONNECTED) {
                    this.connected = true;
                    this.boundJid = conn.jid;
                    clearTimeout(timer);
                    resolve(true);
                } else if (status === S.CONNFAIL || status === S.AUTHFAIL || status === S.ERROR) {
                    this.error = this.error || `${Object.keys(S).find((k) => S[k] === status)}${condition ? ': ' + condition : ''}`;
                    clearTimeout(timer);
                    resolve(false);
                } else if (status === S.DISCONNECTED) {
                    this.connected = false;
                    this.notify();
                    clearTimeout(timer);
                    resolve(false);
                }
            });
        });
    }

    async join(timeoutMs) {
        const t0 = Date.now();
        const ok = await this.connect(timeoutMs);
        if (ok) {
            this.conn.send($pres({ to: `${this.roomJid}/${this.nick}` }).c('x', { xmlns: NS_MUC }));
            await this.waitFor(() => this.error || !this.connected ||
                (this.joined && this.occupants.size >= this.expect), Math.max(0, timeoutMs - (Date.now() - t0)));
        }
        const good = ok && this.joined && this.occupants.size >= this.expect && !this.error;
        if (ok && !good && !this.error) {
            this.error = !this.connected ? 'disconnected' : !this.joined ? 'no self-presence (status 110)'
                : `saw ${this.occupants.size} of ${this.expect} occupants`;
        }
        this.ok = good;
        out({
            event: 'joined', id: this.id, room: this.room, nick: this.nick, transport: this.transport,
            jid: this.boundJid, ok: good, occupants: [...this.occupants].sort(), error: this.error,
            ms: Date.now() - t0,
        });
        return good;
    }

    async chat(round, others, timeoutMs) {
        const token = `chat:${round}:`;
        this.conn.send($msg({ to: this.roomJid, type: 'groupchat' }).c('body').t(`${token}${this.nick}`));
        const got = () => new Set(this.messages.filter((m) => m.body.startsWith(token)).map((m) => m.nick));
        await this.waitFor(() => others.every((n) => got().has(n)) || !this.connected, timeoutMs);
        const received = [...got()].filter((n) => n !== this.nick).sort();
        const missing = others.filter((n) => !got().has(n));
        out({ event: 'chat', id: this.id, room: this.room, nick: this.nick, ok: missing.length === 0,
              received, missing });
        return missing.length === 0;
    }

    async leave() {
        if (!this.conn) return;
        if (this.connected) {
            try {
                this.conn.send($pres({ to: `${this.roomJid}/${this.nick}`, type: 'unavailable' }));
                this.conn.flush();
            } catch (e) { /* already gone */ }
            await new Promise((resolve) => {
                const t = setTimeout(resolve, 2000);
                this.waiters.add(() => { if (!this.connected) { clearTimeout(t); resolve(); } });
                try { this.conn.disconnect('leaving'); } catch (e) { clearTimeout(t); resolve(); }
            });
        }
        out({ event: 'left', id: this.id });
    }
}

async function main() {
    let args, plan;
    try {
        args = parseArgs(process.argv.slice(2));
        plan = await loadPlan(args);
    } catch (e) {
        process.stderr.write(`participant.mjs: ${e.message}\n`);
        process.exit(2);
    }
    if (!globalThis.crypto) globalThis.crypto = (await import('node:crypto')).webcrypto;  // Node 18
    globalThis.XMLHttpRequest = XHR;    // BOSH under Node (strophe.js uses XMLHttpRequest)
    Strophe.setLogLevel(Strophe.LogLevel.WARN);
    if (plan.resolve) installResolver(plan.resolve);
    const timeoutMs = plan.timeout * 1000;
    const all = [];
    let round = 0;
    let allOk = true;

    async function joinAll(specs) {
        const ps = specs.map((s) => new Participant(s, plan));
        all.push(...ps);
        const res = await Promise.all(ps.map((p) => p.join(timeoutMs)));
        if (res.includes(false)) allOk = false;
        return ps;
    }

    async function chatRound(ps) {
        round += 1;
        const live = ps.filter((p) => p.ok && p.connected);
        const res = await Promise.all(live.map((p) => p.chat(round,
            live.filter((q) => q.roomJid === p.roomJid && q !== p).map((q) => q.nick), timeoutMs)));
        return !res.includes(false);
    }

    async function leaveAll() {
        await Promise.all(all.map((p) => p.leave()));
        out({ event: 'done', joined: all.filter((p) => p.ok).length, failed: all.filter((p) => !p.ok).length });
    }

    await joinAll(plan.participants || []);
    if (plan.chat && !(await chatRound(all))) allOk = false;

    if (!plan.hold) {
        await leaveAll();
        process.exit(allOk ? 0 : 1);
    }
    out({ event: 'ready' });
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
        if (!line.trim()) continue;
        let cmd;
        try { cmd = JSON.parse(line); } catch (e) { out({ event: 'bad-command', line }); continue; }
        if (cmd.cmd === 'chat') {
            const ids = cmd.ids ? new Set(cmd.ids) : null;
            const sel = all.filter((p) => !ids || ids.has(p.id));
            const ok = await chatRound(sel);
            out({ event: 'chat-done', ok });
        } else if (cmd.cmd === 'status') {
            out({ event: 'status', participants: all.map((p) => ({ id: p.id, room: p.room, connected: p.connected })) });
        } else if (cmd.cmd === 'join') {
            const ps = await joinAll(cmd.participants || []);
            out({ event: 'join-done', ok: ps.every((p) => p.ok) });
        } else if (cmd.cmd === 'leave') {
            break;
        } else {
            out({ event: 'bad-command', line });
        }
    }
    await leaveAll();
    process.exit(0);
}

main().catch((e) => {
    process.stderr.write(`participant.mjs: ${e.stack || e}\n`);
    process.exit(3);
});
