#include "tls/tls_stream.hpp"

#include <openssl/err.h>

#include <algorithm>
#include <cstring>

namespace xs::tls {

namespace {

// A source/sink BIO without a buffer of its own: reads come from BioIo::in (the caller's bytes),
// writes are appended to *BioIo::out (the caller's string). Nothing is held between calls.
int bio_read(BIO* b, char* buf, std::size_t len, std::size_t* got) {
    auto* io = static_cast<detail::BioIo*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (io->in.empty()) {
        BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    std::size_t n = std::min(len, io->in.size());
    std::memcpy(buf, io->in.data(), n);
    io->in.remove_prefix(n);
    *got = n;
    return 1;
}

int bio_write(BIO* b, const char* buf, std::size_t len, std::size_t* put) {
    auto* io = static_cast<detail::BioIo*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (!io->out) return 0;  // outside a call: cannot happen (no renegotiation, no timers)
    io->out->append(buf, len);
    *put = len;
    return 1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    auto* io = static_cast<detail::BioIo*>(BIO_get_data(b));
    switch (cmd) {
        case BIO_CTRL_FLUSH: return 1;
        case BIO_CTRL_PENDING: return io ? static_cast<long>(io->in.size()) : 0;
        case BIO_CTRL_WPENDING: return 0;
        default: return 0;
    }
}

int bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

int bio_destroy(BIO*) { return 1; }

BIO_METHOD* bio_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "xmpp-shard");
        BIO_meth_set_read_ex(m, bio_read);
        BIO_meth_set_write_ex(m, bio_write);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        BIO_meth_set_destroy(m, bio_destroy);
        return m;
    }();
    return method;
}

// Clears the thread's OpenSSL error queue on entry (SSL_get_error needs it empty before an I/O
// call; workers share nothing else) and detaches the caller's buffers on exit.
struct CallScope {
    detail::BioIo& io;
    CallScope(detail::BioIo& io_, std::string_view in, std::string* out) : io(io_) {
        ERR_clear_error();
        io.in = in;
        io.out = out;
    }
    ~CallScope() {
        io.in = {};
        io.out = nullptr;
        ERR_clear_error();
    }
};

}  // namespace

std::string_view to_string(TlsState s) {
    switch (s) {
        case TlsState::Handshaking: return "handshaking";
        case TlsState::Open: return "open";
        case TlsState::Closed: return "closed";
        case TlsState::Failed: return "failed";
    }
    return "failed";
}

std::string_view to_string(TlsFailure f) {
    switch (f) {
        case TlsFailure::None: return "ok";
        case TlsFailure::UnknownSni: return "unknown-sni";
        case TlsFailure::Version: return "version";
        case TlsFailure::NoSharedCipher: return "no-shared-cipher";
        case TlsFailure::Alpn: return "alpn";
        case TlsFailure::Protocol: return "protocol";
        case TlsFailure::PeerAlert: return "peer-alert";
    }
    return "protocol";
}

TlsStream::TlsStream(std::shared_ptr<const CertStore> store) : store_(std::move(store)) {}

TlsStream::~TlsStream() { SSL_free(ssl_); }

std::unique_ptr<TlsStream> TlsStream::accept(std::shared_ptr<const CertStore> store,
                                             std::string_view domain) {
    // Every SSL starts from the default context, so that session tickets are sealed with one key
    // whatever certificate is presented; then the certificate for `domain` is put in place.
    SSL_CTX* chosen = domain.empty() ? nullptr : store->find(domain);
    std::unique_ptr<TlsStream> s(new TlsStream(std::move(store)));
    s->ssl_ = SSL_new(s->store_->default_context());
    BIO* bio = s->ssl_ ? BIO_new(bio_method()) : nullptr;
    if (!bio) {
        ERR_clear_error();
        return nullptr;
    }
    BIO_set_data(bio, &s->io_);
    SSL_set_bio(s->ssl_, bio, bio);  // one reference, owned by the SSL
    if (chosen) SSL_set_SSL_CTX(s->ssl_, chosen);
    SSL_set_accept_state(s->ssl_);
    SSL_set_app_data(s->ssl_, s.get());
    SSL_set_info_callback(s->ssl_, on_info);
    return s;
}

void TlsStream::on_info(const SSL* ssl, int where, int ret) {
    if (!(where & SSL_CB_ALERT) || (ret >> 8) != SSL3_AL_FATAL) return;
    auto* self = static_cast<TlsStream*>(SSL_get_app_data(ssl));
    if (where & SSL_CB_WRITE) self->alert_sent_ = ret & 0xFF;
    else self->alert_received_ = ret & 0xFF;
}

TlsState TlsStream::feed(std::string_view ciphertext, std::string& plain, std::string& out) {
    if (state_ == TlsState::Closed || state_ == TlsState::Failed) return state_;
    CallScope scope(io_, ciphertext, &out);
    if (state_ == TlsState::Handshaking && !drive_handshake()) return state_;
    if (state_ == TlsState::Open) read_records(plain);
    return state_;
}

bool TlsStream::drive_handshake() {
    int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
        handshake_done_ = true;
        state_ = TlsState::Open;
        return true;
    }
    int err = SSL_get_error(ssl_, rc);
    if (err != SSL_ERROR_WANT_READ) fail(err);
    return false;
}

void TlsStream::read_records(std::string& plain) {
    char buf[16 * 1024];
    for (;;) {
        std::size_t n = 0;
        int rc = SSL_read_ex(ssl_, buf, sizeof buf, &n);
        if (rc == 1) {
            plain.append(buf, n);
            continue;
        }
        int err = SSL_get_error(ssl_, rc);
        if (err == SSL_ERROR_WANT_READ) return;  // all input consumed
        if (err == SSL_ERROR_ZERO_RETURN) {
            state_ = TlsState::Closed;  // close_notify: our own goes out with close()
            return;
        }
        fail(err);
        return;
    }
}

bool TlsStream::write(std::string_view plain, std::string& out) {
    if (state_ != TlsState::Open) return false;
    CallScope scope(io_, {}, &out);
    while (!plain.empty()) {
        std::size_t n = 0;
        int rc = SSL_write_ex(ssl_, plain.data(), plain.size(), &n);
        if (rc != 1) {
            fail(SSL_get_error(ssl_, rc));
            return false;
        }
        plain.remove_prefix(n);
    }
    return true;
}

void TlsStream::close(std::string& out) {
    if (state_ == TlsState::Failed) return;
    CallScope scope(io_, {}, &out);
    if (handshake_done_) SSL_shutdown(ssl_);  // writes close_notify; the peer's is not awaited
    state_ = TlsState::Closed;
}

void TlsStream::fail(int ssl_error) {
    state_ = TlsState::Failed;
    unsigned long e = ERR_peek_error();
    const char* reason = e ? ERR_reason_error_string(e) : nullptr;
    if (alert_received_ >= 0) {
        failure_ = TlsFailure::PeerAlert;
        error_ = std::string("client sent alert: ") + SSL_alert_desc_string_long(alert_received_);
        return;
    }
    switch (alert_sent_) {
        case SSL_AD_UNRECOGNIZED_NAME: failure_ = TlsFailure::UnknownSni; break;
        case SSL_AD_PROTOCOL_VERSION: failure_ = TlsFailure::Version; break;
        case SSL_AD_HANDSHAKE_FAILURE: failure_ = TlsFailure::NoSharedCipher; break;
        case SSL_AD_NO_APPLICATION_PROTOCOL: failure_ = TlsFailure::Alpn; break;
        default: failure_ = TlsFailure::Protocol; break;
    }
    if (reason) error_ = reason;
    else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_SSL) error_ = "TLS error";
    else error_ = "TLS error " + std::to_string(ssl_error);
    if (alert_sent_ >= 0) error_ += std::string(" (sent alert: ") + SSL_alert_desc_string_long(alert_sent_) + ")";
}

std::string_view TlsStream::sni() const {
    const char* s = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    return s ? std::string_view(s) : std::string_view();
}

std::string_view TlsStream::alpn() const {
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return p ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view();
}

std::string_view TlsStream::version() const { return SSL_get_version(ssl_); }

std::string_view TlsStream::cipher() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    return c ? std::string_view(SSL_CIPHER_get_name(c)) : std::string_view();
}

bool TlsStream::resumed() const { return SSL_session_reused(ssl_) == 1; }

int TlsStream::certificate() const { return store_->index_of(SSL_get_SSL_CTX(ssl_)); }

}  // namespace xs::tls
