#include "client.hpp"

#include <cstring>

#include "core/stanzas.hpp"

namespace xs::loadgen {

namespace ns = stanzas;

namespace {

// SNI for the transport's TLS: the Host header's name (no port; none for an IP literal).
std::string tls_name(const std::string& host) {
    if (host.empty() || host[0] == '[') return "";
    std::string name = host.substr(0, host.find(':'));
    bool numeric = name.find_first_not_of("0123456789.") == std::string::npos;
    return numeric ? "" : name;
}

}  // namespace

Client::Client(Env& env, ClientOwner& owner, LoginSpec spec, std::size_t index)
    : env_(env), owner_(owner), spec_(std::move(spec)), index_(index) {}

Client::~Client() = default;

void Client::start() {
    if (state_ != State::Idle && state_ != State::Closed) return;
    state_ = State::Connecting;
    step_ = Step::Features;
    authed_ = false;
    jid_.clear();
    scram_.reset();
    parser_.reset();
    transport_ = make_transport(spec_.transport);
    links_.assign(transport_->links(), nullptr);
    tls_.clear();
    tls_.resize(links_.size());
    tls_pending_.assign(links_.size(), std::string());
    t_start_us = now_us();
    t_connected_us = t_ready_us = 0;
    connections = 0;
    uv_timer_init(env_.loop, &timer_);
    timer_.data = this;
    handles_open_ = true;
    if (!open_link(0)) return;
    arm_timer(spec_.connect_timeout);
}

bool Client::open_link(std::size_t k) {
    auto* l = new Link(env_.loop, *this, k);
    links_[k] = l;
    ++connections;
    const sockaddr* src = nullptr;
    if (!env_.sources.empty())
        src = reinterpret_cast<const sockaddr*>(&env_.sources[env_.next_source++ % env_.sources.size()]);
    std::string kind, detail;
    if (l->connect(reinterpret_cast<const sockaddr*>(&spec_.server), src, kind, detail)) return true;
    fail(kind, detail);
    return false;
}

void Client::close_link(std::size_t k) {
    Link* l = links_[k];
    if (!l) return;
    links_[k] = nullptr;
    tls_[k].reset();  // a new connection on this link starts a new TLS session
    tls_pending_[k].clear();
    ++closes_pending_;
    l->close();
}

void Client::arm_timer(double seconds) {
    uv_timer_start(&timer_, on_timer, static_cast<std::uint64_t>(seconds * 1000.0 + 0.5), 0);
}

void Client::on_timer(uv_timer_t* t) {
    auto* c = static_cast<Client*>(t->data);
    switch (c->state_) {
        case State::Connecting: return c->fail("connect:timeout", "TCP connect timed out");
        case State::Negotiating: return c->fail("login:timeout", "no bound resource in time");
        case State::Closing: return c->abort();
        default: return;
    }
}

void Client::link_connected(Link& l) {
    if (state_ == State::Connecting && l.id() == 0) {
        t_connected_us = now_us();
        state_ = State::Negotiating;
        arm_timer(spec_.login_timeout);
    }
    if (spec_.transport.tls) {  // TLS first; the transport hears of the connection once it is up
        tls_[l.id()] = std::make_unique<TlsSession>(*env_.tls, tls_name(spec_.transport.http_host));
        if (tls_[l.id()]->start() != TlsSession::Status::Ok) return fail("tls", tls_[l.id()]->error());
        return flush_tls(l.id());
    }
    after(transport_->connected(l.id()), nullptr);
}

// Link k's handshake ended: what was written meanwhile goes out, then the transport goes on
// (STARTTLS: the stream restarts; the transport's TLS: the connection is up for it).
void Client::tls_up(std::size_t k) {
    if (!tls_pending_[k].empty()) {
        std::string pending = std::move(tls_pending_[k]);
        tls_pending_[k].clear();
        if (tls_[k]->write(pending) != TlsSession::Status::Ok) return fail("tls", tls_[k]->error());
        flush_tls(k);
    }
    if (spec_.transport.tls) after(transport_->connected(k), nullptr);
    else open_stream();
}

void Client::open_stream() {
    transport_->open(spec_.domain);
    drain();
}

uv_buf_t Client::link_buffer() { return uv_buf_init(env_.read_buf, sizeof env_.read_buf); }

void Client::link_read(Link& l, const char* data, std::size_t len) {
    if (state_ == State::Closed || !handles_open_) return;
    bytes_in += len;
    std::size_t k = l.id();
    if (TlsSession* tls = tls_[k].get()) {
        bool was_done = tls->handshake_done();
        plain_.clear();
        if (tls->feed(data, len, plain_) != TlsSession::Status::Ok) return fail("tls", tls->error());
        flush_tls(k);
        if (!handles_open_) return;
        if (!was_done && tls->handshake_done()) tls_up(k);
        if (plain_.empty() || !handles_open_) return;
        data = plain_.data();
        len = plain_.size();
    }
    after(transport_->input(k, data, len, parser_), nullptr);
}

// A transport that cannot do without the connection (TCP, WebSocket) answers Ended: the peer
// closed the stream, or a read error ended it. BOSH carries on with a new connection. A close
// in the middle of a TLS handshake is a TLS failure (a server that does not speak TLS there).
void Client::link_eof(Link& l, int error) {
    if (tls_[l.id()] && !tls_[l.id()]->handshake_done())
        return fail("tls", "connection closed during the TLS handshake");
    close_link(l.id());
    if (!handles_open_) return;
    Transport::In in = transport_->eof(l.id(), parser_);
    if (in == Transport::In::Ended && error)
        return fail(std::string("closed:") + uv_err_name(error), "read error");
    after(in, "EOF");
}

void Client::link_failed(Link&, const std::string& kind, const std::string& detail) { fail(kind, detail); }

void Client::link_gone(Link&) { handle_gone(); }

// What follows every call into the transport: its writes and closes, the stream opening it
// asked for, the stanzas it parsed, then its verdict (the stanzas first: a <stream:error> in a
// BOSH terminate names the condition better than the terminate).
void Client::after(Transport::In in, const char* eof_how) {
    drain();
    if (!handles_open_) return;
    if (in == Transport::In::Established) open_stream();
    if (!handles_open_) return;
    pump();
    if (!handles_open_) return;
    if (in == Transport::In::Error) return fail(transport_->error_kind(), transport_->error());
    if (in == Transport::In::Ended) return peer_closed(eof_how ? eof_how : "EOF");
    if (transport_->peer_closed()) peer_closed(transport_->name());
}

void Client::drain() {
    auto& outs = transport_->out();
    for (std::size_t k = 0; k < outs.size() && handles_open_; ++k) {
        Transport::LinkOut& o = outs[k];
        if (o.close) {
            o.close = false;
            close_link(k);
        }
        if (!o.bytes.empty()) {
            write_link(k, o.bytes);
            o.bytes.clear();
        }
    }
}

void Client::pump() {
    while (state_ == State::Negotiating || state_ == State::Ready || state_ == State::Closing) {
        switch (parser_.next()) {
            case xml::StreamParser::Event::None:
                return;
            case xml::StreamParser::Event::StreamOpen:
                continue;
            case xml::StreamParser::Event::StreamClose:
                return peer_closed("</stream:stream>");
            case xml::StreamParser::Event::Error:
                return fail("xml", parser_.error());
            case xml::StreamParser::Event::Stanza: {
                ++stanzas_in;
                xml::Element& st = parser_.stanza();
                if (st.local_name() == "error" && st.name != "error") {  // <stream:error>
                    std::string cond = "unknown";
                    for (const auto& ch : st.children)
                        if (ch.local_name() != "text") cond = std::string(ch.local_name());
                    const xml::Element* text = st.child("text");
                    return fail("stream:" + cond, text ? text->text : "");
                }
                if (state_ == State::Negotiating) negotiate(st);
                else if (state_ == State::Ready || state_ == State::Closing) owner_.on_stanza(*this, st);
                continue;
            }
        }
    }
}

void Client::negotiate(xml::Element& st) {
    std::string_view name = st.local_name();
    const std::string xmlns(st.attr_or("xmlns"));
    switch (step_) {
        case Step::Features:
            if (name != "features") return fail("login:unexpected", "expected features, got " + st.name);
            return on_features(st);
        case Step::Proceed:
            if (name != "proceed") return fail("tls", "STARTTLS refused: " + st.name);
            parser_.reset();
            tls_[0] = std::make_unique<TlsSession>(*env_.tls, spec_.domain);
            step_ = Step::Handshake;
            if (tls_[0]->start() != TlsSession::Status::Ok) return fail("tls", tls_[0]->error());
            step_ = Step::Features;  // the next stanza is the features of the restarted stream
            return flush_tls(0);
        case Step::Handshake:
            return fail("tls", "stanza during the handshake");
        case Step::Sasl:
            if (name == "challenge" && scram_) {
                auto server_first = sasl::base64_decode(st.text);
                std::string err;
                std::optional<std::string> final_msg;
                if (server_first) final_msg = scram_->client_final(*server_first, &err);
                if (!final_msg) return fail("auth:scram", err.empty() ? "bad challenge" : err);
                return send(ns::sasl_response(*final_msg));
            }
            if (name == "success") {
                if (scram_) {
                    auto server_final = sasl::base64_decode(st.text);
                    if (!server_final || !scram_->verify_server_final(*server_final))
                        return fail("auth:scram-server-signature", "server signature mismatch");
                }
                authed_ = true;
                step_ = Step::Features;
                parser_.reset();
                return open_stream();
            }
            if (name == "failure") {
                std::string cond = st.children.empty() ? "failure" : std::string(st.children[0].local_name());
                return fail("auth:" + cond, "SASL failure");
            }
            return fail("login:unexpected", "during SASL: " + st.name);
        case Step::Bind:
        case Step::Session: {
            if (name != "iq") return fail("login:unexpected", "during bind: " + st.name);
            std::string_view type = st.attr_or("type");
            if (type != "result") {
                const xml::Element* err = st.child("error");
                std::string cond = err && !err->children.empty() ? std::string(err->children[0].local_name()) : "error";
                return fail(step_ == Step::Bind ? "bind:" + cond : "session:" + cond, "iq error");
            }
            if (step_ == Step::Bind) {
                const xml::Element* b = st.child("bind");
                const xml::Element* j = b ? b->child("jid") : nullptr;
                if (!j) return fail("bind:no-jid", "bind result without a JID");
                jid_ = j->text;
                if (need_session_) {
                    step_ = Step::Session;
                    return send(ns::session("sess"));
                }
            }
            return become_ready();
        }
    }
}

void Client::on_features(const xml::Element& f) {
    if (spec_.starttls && !tls_[0]) {
        if (!f.child("starttls", ns::kNsTls)) return fail("tls:not-offered", "no STARTTLS feature");
        step_ = Step::Proceed;
        return send(ns::starttls());
    }
    if (spec_.auth == AuthMode::None) return become_ready();
    if (!authed_) return start_auth(f);
    if (!f.child("bind", ns::kNsBind)) return fail("bind:not-offered", "no bind feature");
    const xml::Element* sess = f.child("session", ns::kNsSession);
    need_session_ = sess && !sess->child("optional");
    step_ = Step::Bind;
    send(ns::bind("bind", spec_.resource));
}

void Client::start_auth(const xml::Element& f) {
    const xml::Element* mechs = f.child("mechanisms", ns::kNsSasl);
    auto offered = [&](std::string_view m) {
        if (!mechs) return false;
        for (const auto& c : mechs->children)
            if (c.text == m) return true;
        return false;
    };
    AuthMode mode = spec_.auth;
    if (mode == AuthMode::Auto) {
        if (spec_.user.empty()) mode = AuthMode::Anonymous;
        else mode = offered("SCRAM-SHA-1") ? AuthMode::Scram : AuthMode::Plain;
    }
    step_ = Step::Sasl;
    switch (mode) {
        case AuthMode::Anonymous:
            if (!offered("ANONYMOUS")) return fail("auth:mechanism-not-offered", "ANONYMOUS");
            return send(ns::sasl_auth("ANONYMOUS", ""));
        case AuthMode::Plain:
            if (!offered("PLAIN")) return fail("auth:mechanism-not-offered", "PLAIN");
            return send(ns::sasl_auth("PLAIN", sasl::plain_message(spec_.user, spec_.password)));
        case AuthMode::Scram:
            if (!offered("SCRAM-SHA-1")) return fail("auth:mechanism-not-offered", "SCRAM-SHA-1");
            scram_ = std::make_unique<sasl::ScramSha1Client>(spec_.user, spec_.password,
                                                             sasl::make_nonce(), &env_.scram_cache);
            return send(ns::sasl_auth("SCRAM-SHA-1", scram_->client_first()));
        default:
            return fail("auth:internal", "no mechanism");
    }
}

void Client::become_ready() {
    state_ = State::Ready;
    scram_.reset();
    t_ready_us = now_us();
    uv_timer_stop(&timer_);
    owner_.on_ready(*this);
}

void Client::send(std::string_view data) {
    if (state_ != State::Negotiating && state_ != State::Ready && state_ != State::Closing) return;
    if (!handles_open_) return;
    transport_->send(data);
    drain();
}

// Plaintext for link k. A connection that speaks TLS (or is about to) takes it once its
// handshake has ended; a link without a connection gets a new one first.
void Client::write_link(std::size_t k, std::string_view data) {
    bytes_out += data.size();
    if (TlsSession* tls = tls_[k].get()) {
        if (!tls->handshake_done()) {
            tls_pending_[k] += data;
            return;
        }
        if (tls->write(data) != TlsSession::Status::Ok) return fail("tls", tls->error());
        return flush_tls(k);
    }
    if (!links_[k] && !open_link(k)) return;
    if (spec_.transport.tls) {  // connecting: TLS starts when it is up
        tls_pending_[k] += data;
        return;
    }
    links_[k]->write(data);
}

void Client::flush_tls(std::size_t k) {
    std::string out = tls_[k]->take_output();
    if (out.empty() || !links_[k]) return;
    links_[k]->write(out);
}

void Client::close_stream(double linger_s) {
    if (state_ == State::Ready || state_ == State::Negotiating) {
        transport_->close();
        drain();
        if (!handles_open_) return;
        state_ = State::Closing;
        arm_timer(linger_s);
    } else if (state_ == State::Connecting) {
        abort();
    }
}

void Client::peer_closed(const char* how) {
    if (state_ == State::Closing) return abort();
    fail("closed", std::string("peer closed the stream (") + how + ")");
}

void Client::fail(const std::string& kind, const std::string& detail) {
    if (state_ == State::Closed || !handles_open_) return;
    State was = state_;
    state_ = State::Closing;  // no more stanzas to the owner
    if (was != State::Closing) owner_.on_failed(*this, kind, detail);
    abort();
}

void Client::abort() {
    if (!handles_open_) return;
    handles_open_ = false;
    state_ = State::Closing;
    for (std::size_t k = 0; k < links_.size(); ++k) close_link(k);
    ++closes_pending_;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_timer_close);
}

void Client::on_timer_close(uv_handle_t* h) { static_cast<Client*>(h->data)->handle_gone(); }

void Client::handle_gone() {
    if (--closes_pending_ > 0 || handles_open_) return;
    state_ = State::Closed;
    tls_.clear();
    tls_pending_.clear();
    parser_.reset();
    owner_.on_closed(*this);
}

}  // namespace xs::loadgen
