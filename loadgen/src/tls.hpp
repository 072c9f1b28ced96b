// TLS over memory BIOs: the socket stays libuv's; OpenSSL only transforms bytes.
// Ciphertext from the socket goes in with feed(); plaintext comes out of it; what OpenSSL
// wants to send (handshake records, encrypted writes) is taken with take_output().
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace xs::loadgen {

class TlsContext {
public:
    TlsContext();  // TLS 1.2+, no certificate verification (load testing self-signed servers)
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    SSL_CTX* get() const { return ctx_; }

private:
    SSL_CTX* ctx_;
};

class TlsSession {
public:
    enum class Status { Ok, Error };

    TlsSession(const TlsContext& ctx, const std::string& sni);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Starts the handshake (ClientHello into the output).
    Status start();
    // Ciphertext in; decrypted application data is appended to `plain`.
    Status feed(const char* data, std::size_t n, std::string& plain);
    // Plaintext to encrypt (only once handshake_done()).
    Status write(std::string_view plain);
    // Everything OpenSSL wants on the wire now.
    std::string take_output();
    bool handshake_done() const { return done_; }
    const std::string& error() const { return error_; }

private:
    Status fail(const char* what);
    SSL* ssl_ = nullptr;
    BIO* rbio_ = nullptr;  // network -> SSL
    BIO* wbio_ = nullptr;  // SSL -> network
    bool done_ = false;
    std::string error_;
};

}  // namespace xs::loadgen
