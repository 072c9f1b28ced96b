// The certificates of a terminating listener: one SSL_CTX per [[certificate]] table, chosen by the
// client's SNI (servername callback) or, for STARTTLS, by the stream's `to`.
//
// Built once from plain specs, validated, immutable afterwards and shared by every worker
// (shared_ptr<const CertStore>). A reload (SIGHUP) builds a new store; TLS sessions keep the store
// they started with (TlsStream holds a reference), so nothing is swapped under a live handshake.
//
// Every context gets the same policy: TLS 1.2 and 1.3 only; no renegotiation; no compression;
// AEAD ciphers with forward secrecy for TLS 1.2 (the TLS 1.3 suites are all AEAD); the server's
// cipher order; stateless session tickets (one per TLS 1.3 handshake) and no server-side session
// cache; SSL_MODE_RELEASE_BUFFERS so idle connections hold no record buffers.
//
// Domain matching follows certificates, not routes: "*.example.com" matches exactly one more label
// (a.example.com, not a.b.example.com nor example.com), since that is all such a certificate
// covers. Exact domains win over wildcards.
#pragma once
#include <openssl/ssl.h>

#include <cstddef>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace xs::tls {

struct CertificateSpec {
    std::string cert_path;             // PEM: the leaf certificate, then its chain
    std::string key_path;              // PEM private key (unencrypted) matching the leaf
    std::vector<std::string> domains;  // exact names or "*.suffix"; each must be covered by the
                                       // leaf's subjectAltName dNSNames (its CN if it has none)
};

struct StoreOptions {
    // ALPN protocols the server accepts, in its order of preference. A client that offers ALPN
    // gets the first of these it also offers; a client that offers only others is refused with
    // the no_application_protocol alert. Clients that send no ALPN are accepted.
    std::vector<std::string> alpn = {"xmpp-client"};
    // An SNI naming no configured domain is refused with the unrecognized_name alert. When false,
    // such a handshake goes on with the certificate chosen before it (the default, or by `to`).
    bool strict_sni = true;
    // OpenSSL cipher list for TLS 1.2 (TLS 1.3 uses OpenSSL's default suites).
    std::string tls12_ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
    std::string groups = "X25519:P-256:P-384";
};

// One problem found while building, located by certificate and field so that the config loader
// can turn it into FILE:LINE:COL (like routing::CompileError).
enum class CertField { Certificate, Cert, Key, Domains };
struct CertError {
    std::size_t certificate = 0;  // index into the specs
    CertField field = CertField::Certificate;
    std::size_t item = 0;         // index into domains (0 otherwise)
    std::string message;
};

// What a store knows about one loaded certificate (logs, metrics such as days to expiry).
struct CertificateInfo {
    std::string subject;               // one line, e.g. "CN=meet.example.com"
    std::vector<std::string> names;    // subjectAltName dNSNames (lower-case), or the CN
    std::vector<std::string> domains;  // the configured domains, normalised
    std::time_t not_before = 0;
    std::time_t not_after = 0;
};

class CertStore {
public:
    using BuildResult = std::variant<std::shared_ptr<const CertStore>, std::vector<CertError>>;

    // Loads and checks every spec; reports every problem: a file that cannot be read, no PEM
    // certificate in the cert file, a key that cannot be read or is encrypted, a key that does
    // not match the certificate, an empty domain list, an invalid domain or pattern, a domain the
    // certificate does not cover, a domain listed by two certificates. Also refuses an empty spec
    // list and options OpenSSL rejects (cipher list, groups). Expiry is not an error (see info()).
    static BuildResult build(const std::vector<CertificateSpec>& specs, const StoreOptions& opts = {});

    ~CertStore();
    CertStore(const CertStore&) = delete;
    CertStore& operator=(const CertStore&) = delete;

    // The context of the certificate serving `domain` (normalised: lower-case, no trailing dot),
    // exact first, then "*.parent"; nullptr when none does.
    SSL_CTX* find(std::string_view domain) const;
    // The first certificate's context: used when nothing else decides (Direct TLS without SNI).
    SSL_CTX* default_context() const { return certs_.front().ctx; }
    // Index (into the specs) of the certificate serving `domain`, or -1.
    int index_of(std::string_view domain) const;
    // Index of the certificate whose context `ctx` is, or -1.
    int index_of(const SSL_CTX* ctx) const;

    std::size_t size() const { return certs_.size(); }
    const CertificateInfo& info(std::size_t i) const { return certs_[i].info; }
    const StoreOptions& options() const { return opts_; }

private:
    struct Cert {
        SSL_CTX* ctx = nullptr;
        CertificateInfo info;
    };
    CertStore() = default;

    // OpenSSL callbacks, installed on every context with this store as their argument.
    static int on_servername(SSL* ssl, int* alert, void* arg);
    static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                       const unsigned char* in, unsigned int inlen, void* arg);

    StoreOptions opts_;
    std::string alpn_wire_;  // opts_.alpn in wire format
    std::vector<Cert> certs_;
    // domain -> certificate index: exact names, and wildcard parents (without "*.").
    std::vector<std::pair<std::string, std::size_t>> exact_, wildcard_;  // sorted by name
};

}  // namespace xs::tls
