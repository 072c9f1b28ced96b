#include "tls/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "routing/domain.hpp"

namespace xs::tls {

namespace {

constexpr unsigned char kSessionIdContext[] = "xmpp-shard";

// The most recent OpenSSL error as text (and the queue cleared), or `fallback`.
std::string openssl_error(const char* fallback = "unknown error") {
    unsigned long e = ERR_peek_last_error();
    std::string out = fallback;
    if (e != 0) {
        const char* reason = ERR_reason_error_string(e);
        out = reason ? reason : ("error " + std::to_string(e));
    }
    ERR_clear_error();
    return out;
}

bool read_file(const std::string& path, std::string& out, std::string& why) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        why = "cannot read " + path + ": " + std::strerror(errno);
        return false;
    }
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    bool ok = !std::ferror(f);
    if (!ok) why = "cannot read " + path + ": " + std::strerror(errno);
    std::fclose(f);
    return ok;
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
BioPtr mem_bio(const std::string& s) {
    return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())), BIO_free);
}

// No passphrases: an encrypted key fails to load instead of prompting on the terminal.
int no_password(char*, int, int, void*) { return -1; }

std::time_t asn1_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return timegm(&tm);
}

std::string name_line(const X509_NAME* name) {
    BioPtr b(BIO_new(BIO_s_mem()), BIO_free);
    X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(b.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// The names a certificate is valid for: its subjectAltName dNSNames, or its CN if it has none.
std::vector<std::string> cert_names(X509* x) {
    std::vector<std::string> names;
    auto* gens = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    if (gens) {
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); ++i) {
            const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens, i);
            if (g->type != GEN_DNS) continue;
            const ASN1_STRING* s = g->d.dNSName;
            names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                              static_cast<std::size_t>(ASN1_STRING_length(s)))));
        }
        GENERAL_NAMES_free(gens);
    }
    if (names.empty()) {
        const X509_NAME* subject = X509_get_subject_name(x);
        int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (at >= 0) {
            const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
            unsigned char* utf8 = nullptr;
            int n = ASN1_STRING_to_UTF8(&utf8, s);
            if (n > 0) names.push_back(lower(std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n))));
            OPENSSL_free(utf8);
        }
    }
    return names;
}

bool has(const std::vector<std::string>& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// "a.example.com" -> "example.com"; "" when the name has no parent.
std::string_view parent_of(std::string_view d) {
    auto dot = d.find('.');
    if (dot == 0 || dot == std::string_view::npos || dot + 1 == d.size()) return {};
    return d.substr(dot + 1);
}

// A context with the store's policy and nothing certificate-specific yet.
SSL_CTX* new_context(const StoreOptions& o, std::string& why) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        why = "cannot create a TLS context: " + openssl_error();
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // stateless tickets only
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
    if (SSL_CTX_set_cipher_list(ctx, o.tls12_ciphers.c_str()) != 1) {
        why = "TLS 1.2 cipher list rejected: " + openssl_error();
    } else if (SSL_CTX_set1_groups_list(ctx, o.groups.c_str()) != 1) {
        why = "groups list rejected: " + openssl_error();
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return nullptr;
}

}  // namespace

CertStore::~CertStore() {
    for (Cert& c : certs_) SSL_CTX_free(c.ctx);
}

CertStore::BuildResult CertStore::build(const std::vector<CertificateSpec>& specs,
                                        const StoreOptions& opts) {
    std::vector<CertError> errors;
    auto error = [&](std::size_t i, CertField f, std::size_t item, std::string msg) {
        errors.push_back({i, f, item, std::move(msg)});
    };
    if (specs.empty()) {
        error(0, CertField::Certificate, 0, "a terminating listener needs at least one [[certificate]]");
        return errors;
    }
    std::unique_ptr<CertStore> store(new CertStore());
    store->opts_ = opts;
    for (const std::string& p : opts.alpn) {
        if (p.empty() || p.size() > 255) {
            error(0, CertField::Certificate, 0, "ALPN protocol names must be 1..255 bytes");
            return errors;
        }
        store->alpn_wire_ += static_cast<char>(p.size());
        store->alpn_wire_ += p;
    }
    ERR_clear_error();

    for (std::size_t i = 0; i < specs.size(); ++i) {
        const CertificateSpec& spec = specs[i];
        Cert cert;
        std::string why;
        cert.ctx = new_context(opts, why);
        if (!cert.ctx) {
            error(i, CertField::Certificate, 0, why);
            return errors;  // the options are wrong for every certificate alike
        }
        // Owns cert.ctx until it is moved into the store.
        std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> guard(cert.ctx, SSL_CTX_free);
        SSL_CTX_set_tlsext_servername_callback(cert.ctx, on_servername);
        SSL_CTX_set_tlsext_servername_arg(cert.ctx, store.get());
        if (!store->alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(cert.ctx, on_alpn, store.get());

        // Certificate chain.
        std::string pem;
        X509* leaf = nullptr;
        if (!read_file(spec.cert_path, pem, why)) {
            error(i, CertField::Cert, 0, why);
        } else {
            BioPtr bio = mem_bio(pem);
            leaf = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr);
            if (!leaf) {
                error(i, CertField::Cert, 0, "no PEM certificate in " + spec.cert_path + ": " + openssl_error());
            } else if (SSL_CTX_use_certificate(cert.ctx, leaf) != 1) {
                error(i, CertField::Cert, 0, "certificate in " + spec.cert_path + " rejected: " + openssl_error());
            } else {
                while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) {
                    if (SSL_CTX_add0_chain_cert(cert.ctx, extra) != 1) X509_free(extra);
                }
                ERR_clear_error();  // the end of the file reads as "no start line"
                cert.info.subject = name_line(X509_get_subject_name(leaf));
                cert.info.names = cert_names(leaf);
                cert.info.not_before = asn1_time(X509_get0_notBefore(leaf));
                cert.info.not_after = asn1_time(X509_get0_notAfter(leaf));
            }
        }

        // Private key.
        std::string key_pem;
        if (!read_file(spec.key_path, key_pem, why)) {
            error(i, CertField::Key, 0, why);
        } else {
            BioPtr bio = mem_bio(key_pem);
            EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr);
            if (!key) {
                bool encrypted = key_pem.find("ENCRYPTED") != std::string::npos;
                error(i, CertField::Key, 0,
                      encrypted ? spec.key_path + " holds an encrypted key; passphrases are not supported"
                                : "no PEM private key in " + spec.key_path + ": " + openssl_error());
            } else {
                if (leaf && X509_check_private_key(leaf, key) != 1) {
                    ERR_clear_error();
                    error(i, CertField::Key, 0,
                          "the key in " + spec.key_path + " does not match the certificate in " + spec.cert_path);
                } else if (SSL_CTX_use_PrivateKey(cert.ctx, key) != 1) {
                    error(i, CertField::Key, 0, "key in " + spec.key_path + " rejected: " + openssl_error());
                }
                EVP_PKEY_free(key);
            }
        }

        // Domains: valid, covered by the certificate, not served by an earlier certificate.
        if (spec.domains.empty()) error(i, CertField::Domains, 0, "a certificate needs at least one domain");
        for (std::size_t d = 0; d < spec.domains.size(); ++d) {
            std::string bad;
            auto pat = routing::parse_pattern(spec.domains[d], &bad);
            if (!pat || pat->kind == routing::PatternKind::Any) {
                error(i, CertField::Domains, d,
                      pat ? "\"*\" is not a certificate domain: list exact names or \"*.suffix\""
                          : "invalid domain \"" + spec.domains[d] + "\": " + bad);
                continue;
            }
            bool wild = pat->kind == routing::PatternKind::Wildcard;
            std::string shown = wild ? "*." + pat->text : pat->text;
            auto& index = wild ? store->wildcard_ : store->exact_;
            auto taken = std::find_if(index.begin(), index.end(),
                                      [&](const auto& e) { return e.first == pat->text; });
            if (taken != index.end()) {
                error(i, CertField::Domains, d,
                      shown + (taken->second == i ? " is listed twice"
                                                  : " is already served by certificate " +
                                                        std::to_string(taken->second + 1)));
                continue;
            }
            if (leaf) {
                bool covered = wild ? has(cert.info.names, shown)
                                    : has(cert.info.names, shown) ||
                                          (!parent_of(shown).empty() &&
                                           has(cert.info.names, "*." + std::string(parent_of(shown))));
                if (!covered) {
                    std::string list;
                    for (const auto& n : cert.info.names) list += (list.empty() ? "" : ", ") + n;
                    error(i, CertField::Domains, d,
                          shown + " is not covered by the certificate in " + spec.cert_path +
                              " (it names: " + (list.empty() ? "nothing" : list) + ")");
                    continue;
                }
            }
            index.emplace_back(pat->text, i);
            cert.info.domains.push_back(shown);
        }
        X509_free(leaf);
        guard.release();
        store->certs_.push_back(std::move(cert));
    }
    if (!errors.empty()) return errors;
    auto by_name = [](const auto& a, const auto& b) { return a.first < b.first; };
    std::sort(store->exact_.begin(), store->exact_.end(), by_name);
    std::sort(store->wildcard_.begin(), store->wildcard_.end(), by_name);
    return std::shared_ptr<const CertStore>(store.release());
}

int CertStore::index_of(std::string_view domain) const {
    auto lookup = [](const auto& index, std::string_view name) -> int {
        auto it = std::lower_bound(index.begin(), index.end(), name,
                                   [](const auto& e, std::string_view n) { return e.first < n; });
        return it != index.end() && it->first == name ? static_cast<int>(it->second) : -1;
    };
    int i = lookup(exact_, domain);
    if (i < 0 && !parent_of(domain).empty()) i = lookup(wildcard_, parent_of(domain));
    return i;
}

int CertStore::index_of(const SSL_CTX* ctx) const {
    for (std::size_t i = 0; i < certs_.size(); ++i)
        if (certs_[i].ctx == ctx) return static_cast<int>(i);
    return -1;
}

SSL_CTX* CertStore::find(std::string_view domain) const {
    int i = index_of(domain);
    return i < 0 ? nullptr : certs_[static_cast<std::size_t>(i)].ctx;
}

int CertStore::on_servername(SSL* ssl, int* alert, void* arg) {
    const auto* self = static_cast<const CertStore*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_NOACK;  // no SNI: keep the context chosen before
    auto normal = routing::normalize_domain(name);
    SSL_CTX* ctx = normal ? self->find(*normal) : nullptr;
    if (!ctx) {
        if (!self->opts_.strict_sni) return SSL_TLSEXT_ERR_NOACK;
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

int CertStore::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                       const unsigned char* in, unsigned int inlen, void* arg) {
    const auto* self = static_cast<const CertStore*>(arg);
    unsigned char* chosen = nullptr;
    int rc = SSL_select_next_proto(&chosen, outlen,
                                   reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                                   static_cast<unsigned>(self->alpn_wire_.size()), in, inlen);
    if (rc != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace xs::tls
