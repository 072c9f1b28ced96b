#include "tls.hpp"

#include <openssl/err.h>

#include <stdexcept>

namespace xs::loadgen {

TlsContext::TlsContext() {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) throw std::runtime_error("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    // Thousands of sessions: keep per-connection buffers small when idle.
    SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(const TlsContext& ctx, const std::string& sni) {
    ssl_ = SSL_new(ctx.get());
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    if (!ssl_ || !rbio_ || !wbio_) throw std::runtime_error("SSL_new/BIO_new failed");
    BIO_set_mem_eof_return(rbio_, -1);
    SSL_set_bio(ssl_, rbio_, wbio_);  // ssl_ owns both now
    SSL_set_connect_state(ssl_);
    if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

TlsSession::Status TlsSession::fail(const char* what) {
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    error_ = std::string(what) + ": " + (e ? buf : "unknown");
    ERR_clear_error();
    return Status::Error;
}

TlsSession::Status TlsSession::start() {
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        done_ = true;
        return Status::Ok;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::Ok;
    return fail("handshake");
}

TlsSession::Status TlsSession::feed(const char* data, std::size_t n, std::string& plain) {
    if (n && BIO_write(rbio_, data, static_cast<int>(n)) != static_cast<int>(n))
        return fail("BIO_write");
    if (!done_) {
        int r = SSL_do_handshake(ssl_);
        if (r != 1) {
            int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::Ok;
            return fail("handshake");
        }
        done_ = true;
    }
    char buf[16384];
    while (true) {
        int r = SSL_read(ssl_, buf, sizeof buf);
        if (r > 0) {
            plain.append(buf, static_cast<std::size_t>(r));
            continue;
        }
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::Ok;
        if (e == SSL_ERROR_ZERO_RETURN) return Status::Ok;  // close_notify; the TCP EOF follows
        return fail("read");
    }
}

TlsSession::Status TlsSession::write(std::string_view plain) {
    while (!plain.empty()) {
        int r = SSL_write(ssl_, plain.data(), static_cast<int>(plain.size()));
        if (r <= 0) return fail("write");
        plain.remove_prefix(static_cast<std::size_t>(r));
    }
    return Status::Ok;
}

std::string TlsSession::take_output() {
    std::string out;
    char* p = nullptr;
    long n = BIO_get_mem_data(wbio_, &p);
    if (n > 0) {
        out.assign(p, static_cast<std::size_t>(n));
        (void)BIO_reset(wbio_);
    }
    return out;
}

}  // namespace xs::loadgen
