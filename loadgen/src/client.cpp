#include "client.hpp"

#include <cstring>

#include "core/stanzas.hpp"

namespace xs::loadgen {

namespace ns = stanzas;

struct Client::WriteReq {
    uv_write_t req;
    Client* client;
    std::string data;
};

Client::Client(Env& env, ClientOwner& owner, LoginSpec spec, std::size_t index)
    : env_(env), owner_(owner), spec_(std::move(spec)), index_(index) {}

Client::~Client() = default;

void Client::start() {
    if (state_ != State::Idle && state_ != State::Closed) return;
    state_ = State::Connecting;
    step_ = Step::Features;
    authed_ = false;
    jid_.clear();
    tls_.reset();
    scram_.reset();
    parser_.reset();
    transport_ = make_transport(spec_.transport);
    t_start_us = now_us();
    t_connected_us = t_ready_us = 0;
    uv_tcp_init(env_.loop, &tcp_);
    uv_timer_init(env_.loop, &timer_);
    tcp_.data = this;
    timer_.data = this;
    handles_open_ = true;
    uv_tcp_nodelay(&tcp_, 1);
    if (!env_.sources.empty()) {
        const sockaddr_storage& src = env_.sources[env_.next_source++ % env_.sources.size()];
        int r = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&src), 0);
        if (r < 0) return fail(std::string("connect:") + uv_err_name(r), "bind to source address");
    }
    connect_req_.data = this;
    int r = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&spec_.server),
                           on_connect);
    if (r < 0) return fail(std::string("connect:") + uv_err_name(r), uv_strerror(r));
    arm_timer(spec_.connect_timeout);
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

void Client::on_connect(uv_connect_t* req, int status) {
    auto* c = static_cast<Client*>(req->data);
    if (c->state_ != State::Connecting) return;  // aborted meanwhile
    if (status < 0) return c->fail(std::string("connect:") + uv_err_name(status), uv_strerror(status));
    c->t_connected_us = now_us();
    c->state_ = State::Negotiating;
    c->arm_timer(c->spec_.login_timeout);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp_), on_alloc, on_read);
    std::string hs = c->transport_->handshake();
    if (hs.empty()) return c->open_stream();
    c->bytes_out += hs.size();
    c->write_raw(hs);
}

void Client::open_stream() { send(transport_->stream_open(spec_.domain)); }

void Client::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* c = static_cast<Client*>(h->data);
    *buf = uv_buf_init(c->env_.read_buf, sizeof c->env_.read_buf);
}

void Client::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<Client*>(s->data);
    if (n == 0 || c->state_ == State::Closed) return;
    if (n < 0) {
        if (n == UV_EOF) return c->peer_closed("EOF");
        return c->fail(std::string("closed:") + uv_err_name(static_cast<int>(n)), "read error");
    }
    auto len = static_cast<std::size_t>(n);
    c->bytes_in += len;
    const char* data = buf->base;
    if (c->tls_) {
        bool was_done = c->tls_->handshake_done();
        c->plain_.clear();
        if (c->tls_->feed(buf->base, len, c->plain_) != TlsSession::Status::Ok)
            return c->fail("tls", c->tls_->error());
        c->flush_tls();
        if (!was_done && c->tls_->handshake_done()) c->open_stream();
        if (c->plain_.empty()) return;
        data = c->plain_.data();
        len = c->plain_.size();
    }
    std::string reply;
    Transport::In in = c->transport_->input(data, len, c->parser_, reply);
    if (!reply.empty()) c->write_wire(reply);
    if (!c->handles_open_) return;
    if (in == Transport::In::Error)
        return c->fail(c->transport_->error_kind(), c->transport_->error());
    if (in == Transport::In::Established) c->open_stream();
    c->pump();
    if (c->transport_->peer_closed() && c->handles_open_) c->peer_closed("websocket close");
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
            tls_ = std::make_unique<TlsSession>(*env_.tls, spec_.domain);
            step_ = Step::Handshake;
            if (tls_->start() != TlsSession::Status::Ok) return fail("tls", tls_->error());
            step_ = Step::Features;  // the next stanza is the features of the restarted stream
            return flush_tls();
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
    if (spec_.starttls && !tls_) {
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
    std::string_view wire = transport_->wrap(data);
    bytes_out += wire.size();
    write_wire(wire);
}

void Client::write_wire(std::string_view data) {
    if (tls_ && tls_->handshake_done()) {
        if (tls_->write(data) != TlsSession::Status::Ok) return fail("tls", tls_->error());
        return flush_tls();
    }
    write_raw(data);
}

void Client::flush_tls() {
    std::string out = tls_->take_output();
    if (!out.empty()) write_raw(out);
}

void Client::write_raw(std::string_view data) {
    auto* s = reinterpret_cast<uv_stream_t*>(&tcp_);
    uv_buf_t b = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int r = uv_try_write(s, &b, 1);
    if (r == static_cast<int>(data.size())) return;
    if (r > 0) data.remove_prefix(static_cast<std::size_t>(r));
    else if (r != UV_EAGAIN) return fail(std::string("closed:") + uv_err_name(r), "write failed");
    auto* w = new WriteReq{{}, this, std::string(data)};
    w->req.data = w;
    uv_buf_t wb = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    r = uv_write(&w->req, s, &wb, 1, on_write);
    if (r < 0) {
        delete w;
        fail(std::string("closed:") + uv_err_name(r), "write failed");
    }
}

void Client::on_write(uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    Client* c = w->client;
    delete w;
    if (status < 0 && status != UV_ECANCELED &&
        (c->state_ == State::Negotiating || c->state_ == State::Ready))
        c->fail(std::string("closed:") + uv_err_name(status), "write failed");
}

void Client::close_stream(double linger_s) {
    if (state_ == State::Ready || state_ == State::Negotiating) {
        send(transport_->stream_close());
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
    closes_pending_ = 2;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
}

void Client::on_close(uv_handle_t* h) {
    auto* c = static_cast<Client*>(h->data);
    if (--c->closes_pending_ > 0) return;
    c->state_ = State::Closed;
    c->tls_.reset();
    c->parser_.reset();
    c->owner_.on_closed(*c);
}

}  // namespace xs::loadgen
