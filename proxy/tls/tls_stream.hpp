// The server side of one TLS connection as a pure byte transformer: OpenSSL over a custom BIO that
// reads from the caller's buffer and writes into the caller's string. Independent of libuv: the
// session reads ciphertext from its socket, hands it in, and writes out what comes back.
//
//   client socket --ciphertext--> feed() --plaintext--> (sniffer, relay to the backend)
//   (relay from the backend) --plaintext--> write() --ciphertext--> client socket
//
// Both calls append ciphertext to send (handshake messages, tickets, alerts, key updates, records)
// to `out`; the caller writes it to the socket (uv_try_write, then a heap copy of the rest).
// feed() consumes all of its input every time (OpenSSL keeps a partial record in its own buffer),
// so the caller can read into a per-loop scratch buffer. An idle stream holds no buffers: the BIO
// has none, and SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record buffers between records.
//
// Lifecycle: Handshaking -> Open -> Closed, or -> Failed from either. On Failed, `out` usually holds
// an alert: write it, then close the socket. A TCP EOF is not an input: the session handles it (in
// Handshaking it is a failed handshake; in Open, the end of the stream, close_notify or not).
#pragma once
#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "tls/tls_context.hpp"

namespace xs::tls {

namespace detail {
// What the custom BIO reads from and writes to during one call.
struct BioIo {
    std::string_view in;         // the current feed()'s unread ciphertext
    std::string* out = nullptr;  // where ciphertext to send goes
};
}  // namespace detail

enum class TlsState {
    Handshaking,  // before the handshake completes
    Open,         // application data flows both ways
    Closed,       // the client sent close_notify (any bytes after it are ignored)
    Failed,       // fatal error; see failure() and error()
};
std::string_view to_string(TlsState s);

// Why a handshake or stream failed, coarse enough for the metric label
// xmpp_shard_tls_handshakes_total{result} ("ok" for a completed handshake).
enum class TlsFailure {
    None,
    UnknownSni,      // SNI names no configured domain (unrecognized_name alert sent)
    Version,         // the client offers no TLS 1.2 or 1.3 (protocol_version alert)
    NoSharedCipher,  // no common cipher suite or group (handshake_failure alert)
    Alpn,            // ALPN offered without any protocol we accept (no_application_protocol)
    Protocol,        // anything else: malformed input, unexpected message, bad record MAC ...
    PeerAlert,       // the client sent a fatal alert (e.g. it rejected our certificate)
};
std::string_view to_string(TlsFailure f);  // "unknown-sni", "version", ...; "ok" for None

class TlsStream {
public:
    // The server side of a new connection. `domain` (normalised) chooses the certificate used
    // when the client sends no SNI: the stream's `to` for STARTTLS, "" for Direct TLS (the store's
    // default certificate). An SNI, when sent, chooses again (see StoreOptions::strict_sni).
    // The stream keeps `store` alive: a reload cannot free contexts a handshake still uses.
    // Returns nullptr only if OpenSSL cannot allocate.
    static std::unique_ptr<TlsStream> accept(std::shared_ptr<const CertStore> store,
                                             std::string_view domain = {});
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    // Ciphertext from the client. Decrypted application data is appended to `plain`; bytes to
    // send to the client to `out`. Returns the state afterwards. Application data that arrives
    // in the same input as the end of the handshake is delivered at once. In Closed or Failed,
    // input is ignored.
    TlsState feed(std::string_view ciphertext, std::string& plain, std::string& out);

    // Plaintext to the client (only in Open; otherwise ignored and false). Appends the records
    // to `out`. Returns false if the stream failed while writing.
    bool write(std::string_view plain, std::string& out);

    // Sends close_notify (to `out`) unless the stream already failed. Further input is ignored.
    void close(std::string& out);

    TlsState state() const { return state_; }
    bool handshake_done() const { return handshake_done_; }  // true from Open on, also after
    TlsFailure failure() const { return failure_; }
    // A short description of the failure for logs (OpenSSL's reason, or the alert), or "".
    const std::string& error() const { return error_; }

    // Valid once the handshake is done (some earlier: sni() as soon as the ClientHello is read).
    std::string_view sni() const;         // as the client sent it; "" without SNI
    std::string_view alpn() const;        // the negotiated protocol; "" when none
    std::string_view version() const;     // "TLSv1.3", "TLSv1.2"
    std::string_view cipher() const;      // e.g. "TLS_AES_128_GCM_SHA256"
    bool resumed() const;                 // an abbreviated handshake (session ticket)
    // Index (into the store's specs) of the certificate presented (before the ClientHello: the
    // one chosen so far).
    int certificate() const;
    const CertStore& store() const { return *store_; }
    SSL* native() const { return ssl_; }  // for tests and diagnostics

private:
    explicit TlsStream(std::shared_ptr<const CertStore> store);

    void fail(int ssl_error);
    bool drive_handshake();
    void read_records(std::string& plain);
    static void on_info(const SSL* ssl, int where, int ret);

    std::shared_ptr<const CertStore> store_;
    SSL* ssl_ = nullptr;  // owns the BIO
    TlsState state_ = TlsState::Handshaking;
    TlsFailure failure_ = TlsFailure::None;
    bool handshake_done_ = false;
    int alert_sent_ = -1;      // last fatal alert we sent (description), -1 none
    int alert_received_ = -1;  // last fatal alert the client sent, -1 none
    std::string error_;
    detail::BioIo io_;
};

}  // namespace xs::tls
