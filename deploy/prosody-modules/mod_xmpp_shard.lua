-- mod_xmpp_shard: the Prosody side of xmpp-shard (Prosody 0.12, Lua 5.1 .. 5.4).
--
-- A listening port for the proxy only ("xmpp_shard" network service). Every connection on it must
-- come from a trusted proxy address and start with a PROXY protocol v2 header (haproxy's
-- proxy-protocol.txt, section 2.2); the module reads that header, then hands the connection to the
-- c2s (or component) listener with the client's real address in place of the proxy's, so that
-- logs, session.ip and everything keyed on it (registration limits, admin views) see the client.
--
-- When the header carries PP2_TYPE_SSL with the PP2_CLIENT_SSL flag (the proxy terminated TLS
-- with the client), the session is marked secure: SASL PLAIN is offered without
-- allow_unencrypted_plain_auth, and STARTTLS is not offered again. The hop from the proxy is
-- plaintext, so the port must only be reachable by the proxy (loopback or a private network).
--
-- Trust rules:
--   * a connection from an address outside xmpp_shard_trusted_proxies is closed before a byte is
--     read from it;
--   * exactly one header is read, at the very start; whatever follows belongs to the client and
--     is XMPP: a PROXY header sent by a client through the proxy is never interpreted (the c2s
--     parser rejects it as not-well-formed);
--   * the c2s port (c2s_ports) never parses PROXY headers at all.
--
-- Settings (global section):
--   xmpp_shard_ports = { 15222 }                  -- required: where the proxy connects
--   xmpp_shard_interfaces = { "127.0.0.1" }       -- default: local_interfaces (loopback)
--   xmpp_shard_trusted_proxies = { "127.0.0.1", "::1" }   -- addresses or CIDR ranges
--   xmpp_shard_services = { "c2s", "component" } -- chosen by the stream header's xmlns
--   xmpp_shard_trust_tls = true                   -- honour the proxy's TLS TLV (secure sessions)
--   xmpp_shard_header_timeout = 10                -- seconds to receive the whole PROXY header
--   xmpp_shard_max_header = 4096                  -- bytes: PROXY header, and stream sniffing
module:set_global();

local filters = require "util.filters";
local ip_util = require "util.ip";
local net = require "util.net";
local portmanager = require "core.portmanager";

local SIGNATURE = "\13\10\13\10\0\13\10\81\85\73\84\10";  -- \r\n\r\n\0\r\nQUIT\n
local PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_UNIQUE_ID = 0x01, 0x02, 0x05;
local PP2_TYPE_SSL, PP2_SUBTYPE_SSL_VERSION, PP2_SUBTYPE_SSL_CIPHER = 0x20, 0x21, 0x23;
local PP2_CLIENT_SSL = 0x01;

local trusted, services, trust_tls, header_timeout, max_header;

local function load_settings()
	trusted = {};
	for _, item in ipairs(module:get_option_array("xmpp_shard_trusted_proxies", { "127.0.0.1", "::1" })) do
		local addr, bits = ip_util.parse_cidr(item);
		if addr then
			table.insert(trusted, { ip = addr, bits = bits, text = item });
		else
			module:log("error", "xmpp_shard_trusted_proxies: %q is not an address or CIDR range", item);
		end
	end
	services = module:get_option_array("xmpp_shard_services", { "c2s", "component" });
	trust_tls = module:get_option_boolean("xmpp_shard_trust_tls", true);
	header_timeout = module:get_option_number("xmpp_shard_header_timeout", 10);
	max_header = module:get_option_number("xmpp_shard_max_header", 4096);
end
load_settings();
module:hook_global("config-reloaded", load_settings);

local function is_trusted(address)
	local addr = address and ip_util.new_ip(address);
	if not addr then return false; end
	for _, t in ipairs(trusted) do
		if ip_util.match(t.ip, addr, t.bits) then return true; end
	end
	return false;
end

local function u16(s, at) return s:byte(at) * 256 + s:byte(at + 1); end

-- Parses the TLVs in s[from..to]; returns a table of type -> value (first one wins) or nil, error.
local function parse_tlvs(s, from, to)
	local tlvs = {};
	local at = from;
	while at <= to do
		if at + 2 > to then return nil, "truncated TLV"; end
		local typ, len = s:byte(at), u16(s, at + 1);
		if at + 2 + len > to then return nil, "TLV longer than the header"; end
		if tlvs[typ] == nil then tlvs[typ] = s:sub(at + 3, at + 2 + len); end
		at = at + 3 + len;
	end
	return tlvs;
end

-- The PROXY v2 header at the start of `buf`.
-- Returns nil while more bytes are needed; false, reason if it is not a valid header;
-- else a table describing it and the bytes that follow it.
local function parse_header(buf)
	local have = math.min(#buf, #SIGNATURE);
	if buf:sub(1, have) ~= SIGNATURE:sub(1, have) then return false, "not a PROXY v2 header"; end
	if #buf < 16 then return nil; end
	local ver_cmd, fam = buf:byte(13), buf:byte(14);
	local len = u16(buf, 15);
	if math.floor(ver_cmd / 16) ~= 2 then return false, "PROXY protocol version is not 2"; end
	local command = ver_cmd % 16;
	if command > 1 then return false, "unknown PROXY command"; end
	if 16 + len > max_header then return false, "PROXY header longer than xmpp_shard_max_header"; end
	if #buf < 16 + len then return nil; end
	local info = { command = command == 0 and "local" or "proxy" };
	local rest = buf:sub(17 + len);
	local family, proto = math.floor(fam / 16), fam % 16;
	if command == 0 or family == 0 then
		return info, rest;  -- LOCAL (the proxy's own health check) or UNSPEC: real endpoints
	end
	local alen = ({ [1] = 12, [2] = 36 })[family];
	if not alen or proto ~= 1 then return false, "only TCP over IPv4 or IPv6 is supported"; end
	if len < alen then return false, "address block shorter than its family"; end
	local n = alen == 12 and 4 or 16;
	info.src = net.ntop(buf:sub(17, 16 + n));
	info.dst = net.ntop(buf:sub(17 + n, 16 + 2 * n));
	info.src_port = u16(buf, 17 + 2 * n);
	info.dst_port = u16(buf, 19 + 2 * n);
	if not (info.src and info.dst) then return false, "unreadable address"; end
	local tlvs, err = parse_tlvs(buf, 17 + alen, 16 + len);
	if not tlvs then return false, err; end
	info.authority, info.alpn, info.unique_id = tlvs[PP2_TYPE_AUTHORITY], tlvs[PP2_TYPE_ALPN], tlvs[PP2_TYPE_UNIQUE_ID];
	local ssl = tlvs[PP2_TYPE_SSL];
	if ssl then
		if #ssl < 5 then return false, "PP2_TYPE_SSL shorter than 5 bytes"; end
		local subs, serr = parse_tlvs(ssl, 6, #ssl);
		if not subs then return false, "PP2_TYPE_SSL: " .. serr; end
		if ssl:byte(1) % 2 == PP2_CLIENT_SSL then
			info.tls = { version = subs[PP2_SUBTYPE_SSL_VERSION], cipher = subs[PP2_SUBTYPE_SSL_CIPHER] };
		end
	end
	return info, rest;
end

-- The service whose multiplex pattern matches the stream header in `data` (c2s or component).
-- nil while the header may still be incomplete.
local function pick_service(data)
	local first;
	for _, name in ipairs(services) do
		local service = portmanager.get_service(name);
		if service then
			first = first or service;
			if #services == 1 then return service; end
			local pattern = service.multiplex and service.multiplex.pattern;
			if pattern and data:find(pattern) then return service; end
		end
	end
	if not first then return false; end
	if data:find("stream[^>]*>") or #data >= max_header then return first; end  -- its parser will refuse
	return nil;
end

-- Connections being handed over: conn -> header info, read by the filter hook below when the
-- service's onconnect creates the session.
local handing_over = setmetatable({}, { __mode = "k" });

local function on_new_session(session)
	local info = session.conn and handing_over[session.conn];
	if not info then return; end
	session.xmpp_shard = info;
	if info.tls and trust_tls then
		-- Encrypted up to the proxy, plaintext on a trusted hop: secure for SASL's purposes.
		-- session.encrypted stays unset: there is no TLS socket here (no channel binding).
		session.secure = true;
	end
	if info.command ~= "proxy" then
		session.log("debug", "Connection from xmpp-shard %s (%s header)", info.proxy, info.command);
		return;
	end
	local tls = info.tls and ("TLS terminated by the proxy: %s, %s"):format(info.tls.version or "?", info.tls.cipher or "?")
		or "no TLS at the proxy";
	session.log("info", "Client address %s port %d via xmpp-shard %s (%s%s)", info.src, info.src_port,
		info.proxy, tls, info.authority and ("; SNI " .. info.authority) or "");
end
filters.add_filter_hook(on_new_session);
function module.unload() filters.remove_filter_hook(on_new_session); end

local pending = {};  -- conn -> { buf = bytes so far, info = header once read }
local listener = {};

local function refuse(conn, level, why)
	module:log(level, "Closing connection from %s port %s: %s", conn:ip() or "?", conn:port() or "?", why);
	pending[conn] = nil;
	conn:close();
end

local function hand_over(conn, state, service)
	local info = state.info;
	pending[conn] = nil;
	info.proxy = ("%s port %s"):format(conn:ip() or "?", conn:port() or "?");
	if info.src then
		-- The client's address everywhere Prosody looks (conn:ip(), conn:port(), log names),
		-- also after a passthrough STARTTLS (inittls() re-reads the socket's names).
		local updatenames = conn.updatenames;
		local function proxied(self)
			updatenames(self);
			self.peername, self.peerport = info.src, info.src_port;
		end
		conn.updatenames = proxied;
		proxied(conn);
	end
	if info.tls and trust_tls then
		conn.starttls = false;  -- TLS is done (at the proxy): never offer it a second time
	end
	conn.xmpp_shard = info;
	conn:setlistener(service.listener);
	handing_over[conn] = info;
	if service.listener.onconnect then service.listener.onconnect(conn); end
	handing_over[conn] = nil;
	if state.buf ~= "" then service.listener.onincoming(conn, state.buf); end
end

function listener.onconnect(conn)
	if not is_trusted(conn:ip()) then
		return refuse(conn, "warn", "not a trusted proxy (xmpp_shard_trusted_proxies); PROXY header not read");
	end
	pending[conn] = { buf = "" };
	module:add_timer(header_timeout, function ()
		local state = pending[conn];
		if state then
			refuse(conn, "warn", state.info and "no stream header from the proxy in time"
				or "no complete PROXY v2 header within xmpp_shard_header_timeout");
		end
	end);
end

function listener.onincoming(conn, data)
	local state = pending[conn];
	if not state then return; end
	state.buf = state.buf .. data;
	if not state.info then
		local info, rest = parse_header(state.buf);
		if info == nil then return; end  -- need more
		if info == false then return refuse(conn, "warn", rest); end
		state.info, state.buf = info, rest;
	end
	local service = pick_service(state.buf);
	if service == false then return refuse(conn, "error", "none of xmpp_shard_services is loaded"); end
	if service then return hand_over(conn, state, service); end
end

function listener.ondisconnect(conn) pending[conn] = nil; end
function listener.ondetach(conn) pending[conn] = nil; end

module:provides("net", {
	name = "xmpp_shard";
	listener = listener;
	private = true;  -- binds to local_interfaces unless xmpp_shard_interfaces says otherwise
});
