// One simulated XMPP client on the shared libuv loop: its TCP connection(s) (links: one for TCP
// and WebSocket, up to two for BOSH, each from a chosen local address), TLS on each connection
// from its first byte when the transport asks for it (wss://, https://), the transport's
// handshake (none, the WebSocket upgrade, the BOSH session request), stream open, optional
// STARTTLS (TCP only; both TLS kinds are OpenSSL over memory BIOs), SASL (PLAIN, SCRAM-SHA-1,
// ANONYMOUS), resource bind, then stanzas in both directions for the scenario (its owner).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/options.hpp"
#include "core/sasl.hpp"
#include "core/xml_stream.hpp"
#include "link.hpp"
#include "tls.hpp"
#include "transport.hpp"

namespace xs::loadgen {

inline std::uint64_t now_us() { return uv_hrtime() / 1000; }

// What every client of a run shares.
struct Env {
    uv_loop_t* loop = nullptr;
    TlsContext* tls = nullptr;
    sasl::SaltedPasswordCache scram_cache;
    std::vector<sockaddr_storage> sources;  // local addresses to bind, round robin
    std::size_t next_source = 0;
    char read_buf[64 * 1024];
};

struct LoginSpec {
    sockaddr_storage server{};
    std::string domain;
    std::string user;      // empty: ANONYMOUS (in auto mode)
    std::string password;
    std::string resource;
    AuthMode auth = AuthMode::Auto;
    bool starttls = false;
    TransportSpec transport;  // tcp, or websocket/bosh with the request target and Host
    double connect_timeout = 10;
    double login_timeout = 30;
};

class Client;

struct ClientOwner {
    virtual ~ClientOwner() = default;
    // Logged in and bound (or, with AuthMode::None, the first stream features arrived).
    virtual void on_ready(Client& c) = 0;
    // Any failure, before or after ready; the connection is being closed. kind: e.g.
    // "connect:ECONNREFUSED", "tls", "auth:not-authorized", "stream:host-unknown", "closed".
    virtual void on_failed(Client& c, const std::string& kind, const std::string& detail) = 0;
    virtual void on_stanza(Client& c, xml::Element& stanza) = 0;
    // Every handle (connections, timer) closed; the client may be started again.
    virtual void on_closed(Client& c) = 0;
};

class Client : private Link::Owner {
public:
    enum class State { Idle, Connecting, Negotiating, Ready, Closing, Closed };

    Client(Env& env, ClientOwner& owner, LoginSpec spec, std::size_t index);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void start();                          // from Idle or Closed
    void send(std::string_view xml);       // Ready (or Closing: flushing the last stanzas)
    void close_stream(double linger_s = 3);  // the transport's close, then close when the peer does
    void abort();                          // close every connection now

    State state() const { return state_; }
    std::size_t index() const { return index_; }
    const std::string& jid() const { return jid_; }
    const LoginSpec& spec() const { return spec_; }
    LoginSpec& spec() { return spec_; }

    std::uint64_t t_start_us = 0, t_connected_us = 0, t_ready_us = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0, stanzas_in = 0;
    std::uint64_t connections = 0;  // TCP connections opened since start() (BOSH reconnects too)
    std::uint64_t transport_requests() const { return transport_ ? transport_->requests() : 0; }

private:
    enum class Step { Features, Proceed, Handshake, Sasl, Bind, Session };

    // Link::Owner
    void link_connected(Link& l) override;
    void link_read(Link& l, const char* data, std::size_t n) override;
    void link_eof(Link& l, int error) override;
    void link_failed(Link& l, const std::string& kind, const std::string& detail) override;
    void link_gone(Link& l) override;
    uv_buf_t link_buffer() override;

    static void on_timer(uv_timer_t* t);
    static void on_timer_close(uv_handle_t* h);

    void fail(const std::string& kind, const std::string& detail);
    bool open_link(std::size_t k);
    void close_link(std::size_t k);
    void write_link(std::size_t k, std::string_view data);  // through the link's TLS when it has one
    void flush_tls(std::size_t k);
    void tls_up(std::size_t k);  // a link's TLS handshake ended
    void drain();      // carry out the transport's out()
    void after(Transport::In in, const char* eof_how);  // drain, open, pump, errors, ends
    void handle_gone();
    void open_stream();
    void pump();
    void negotiate(xml::Element& st);
    void on_features(const xml::Element& f);
    void start_auth(const xml::Element& f);
    void become_ready();
    void peer_closed(const char* how);
    void arm_timer(double seconds);

    Env& env_;
    ClientOwner& owner_;
    LoginSpec spec_;
    std::size_t index_;
    State state_ = State::Idle;
    Step step_ = Step::Features;
    bool authed_ = false;
    bool need_session_ = false;
    bool handles_open_ = false;
    int closes_pending_ = 0;          // handles (links, the timer) being closed
    std::vector<Link*> links_;        // per link number: its connection, or nullptr
    uv_timer_t timer_{};
    xml::StreamParser parser_;
    // Per link: its connection's TLS (STARTTLS on link 0, or the transport's TLS on every
    // link), and what was written before that handshake ended.
    std::vector<std::unique_ptr<TlsSession>> tls_;
    std::vector<std::string> tls_pending_;
    std::unique_ptr<Transport> transport_;
    std::unique_ptr<sasl::ScramSha1Client> scram_;
    std::string jid_;
    std::string plain_;  // TLS scratch
};

}  // namespace xs::loadgen
