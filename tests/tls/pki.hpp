// A throwaway PKI for the TLS tests, made with the OpenSSL API: a test CA and leaf certificates
// (EC P-256 or RSA 2048) with chosen subjectAltNames, written as PEM files into a temporary
// directory that is removed afterwards.
#pragma once
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace xs::tls::test {

struct LeafOptions {
    std::vector<std::string> dns;  // subjectAltName dNSNames; empty: no SAN extension
    std::string cn;                // subject CN; empty: the first dns name
    bool rsa = false;              // RSA 2048 instead of EC P-256
    bool with_chain = true;        // append the CA certificate after the leaf
    long valid_from = -3600;       // seconds from now
    long valid_to = 30L * 86400;   // seconds from now
    bool encrypt_key = false;      // write the key with a passphrase (unsupported by the store)
};

struct Issued {
    std::string cert;  // PEM path: leaf (+ CA when with_chain)
    std::string key;   // PEM path
};

class Pki {
public:
    Pki();
    ~Pki();
    Pki(const Pki&) = delete;
    Pki& operator=(const Pki&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    const std::string& ca_file() const { return ca_file_; }  // the CA certificate, PEM

    // A leaf signed by the CA; files named after `name`.
    Issued issue(const std::string& name, const LeafOptions& o);
    Issued issue(const std::string& name, std::vector<std::string> dns) {
        LeafOptions o;
        o.dns = std::move(dns);
        return issue(name, o);
    }
    // A file with the given content, for garbage inputs.
    std::string write(const std::string& name, const std::string& content);

private:
    std::filesystem::path dir_;
    EVP_PKEY* ca_key_ = nullptr;
    X509* ca_ = nullptr;
    std::string ca_file_;
};

}  // namespace xs::tls::test
