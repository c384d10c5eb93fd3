#!/usr/bin/env bash
# Regenerates the fuzz fixtures (fuzz/fixtures/) and the seed corpora (fuzz/corpus/<target>/)
# from real ssh-keygen output, so that every committed seed is explained by this script.
#
#   fuzz/mkcorpus.sh          # needs ssh-keygen (Debian: apt-get install openssh-client)
#   fuzz/mkcorpus.sh config   # only the mshd_config and ssh_config seeds (plain text, no keys)
#
# fixtures/ holds throwaway test keys (an unencrypted CA private key among them: it signs
# nothing but fuzz inputs). The targets embed them with include_str!, so the KRL and
# certificate seeds below name keys the targets actually check against, and a fuzzer that
# mutates a seed stays on the "this key is listed / this CA is trusted" paths.
# Re-running the script makes new keys: commit fixtures/ and corpus/ together.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
fix="$here/fixtures"
corpus="$here/corpus"
command -v ssh-keygen >/dev/null || {
    echo "mkcorpus.sh: ssh-keygen not found; install it (Debian: apt-get install openssh-client)" >&2
    exit 1
}

# --- mshd_config and ssh_config: hand-written text, independent of the keys ---------------
config_seeds() {
    local mc="$corpus/mshd_config" sc="$corpus/ssh_config"
    rm -rf "$mc" "$sc"
    mkdir -p "$mc" "$sc"
    # Every mshd key, as server/README.md documents them.
    cat >"$mc/all-keys" <<'TOML'
listen = ["0.0.0.0:22", "[::1]:2222"]
host_keys = ["/etc/msh/ssh_host_ed25519_key", "/etc/msh/ssh_host_ecdsa_key"]
host_certificates = ["/etc/msh/ssh_host_ed25519_key-cert.pub"]
authorized_keys_files = ["%h/.ssh/authorized_keys", "/etc/msh/authorized_keys/%u", "%%literal"]
trusted_user_ca_keys = ["/etc/msh/user_ca.pub"]
authorized_principals_file = "/etc/msh/principals/%u"
revoked_keys = "/etc/msh/revoked_keys"
strict_modes = true
max_auth_tries = 3
login_grace_time = "2m"
max_startups = "10:30:100"
max_sessions = 4
per_source_max_startups = 5
allow_users = ["alice", "ops-*"]
deny_users = ["root"]
accept_env = ["LANG", "LC_*", "TZ"]
permit_user_environment = ["LANG", "APP_*", "!APP_SECRET"]
audit_log = "/var/log/msh/audit.jsonl"
post_quantum_only = false
shutdown_grace_time = "30s"

[subsystems]
sftp = "/usr/lib/openssh/sftp-server -l INFO"
"x-backup" = "/usr/local/bin/backup --serve"
TOML
    printf '%s\n' 'listen = ["127.0.0.1:2222"]' 'audit_log = "-"' 'max_startups = "4"' \
        'login_grace_time = "90"' 'subsystems = { sftp = "internal-sftp" }' >"$mc/minimal"
    : >"$mc/empty"
    printf '%s\n' 'strict_modes = false' 'max_sessions = 0' 'subsystems = {}' 'audit_log = ""' \
        'shutdown_grace_time = "1h"' 'per_source_max_startups = 0' >"$mc/edges"
    # Errors: unknown key, bad listen, bad token, empty subsystem command, bad duration.
    printf '%s\n' 'listen = ["127.0.0.1:2222"]' 'no_such_key = 1' >"$mc/bad-unknown-key"
    printf '%s\n' 'listen = ["localhost"]' >"$mc/bad-listen"
    printf '%s\n' 'authorized_keys_files = ["%x/keys"]' >"$mc/bad-token"
    printf '%s\n' '' '[subsystems]' 'sftp = "  "' >"$mc/bad-subsystem"
    printf '%s\n' 'login_grace_time = "2d"' 'max_startups = "10:200:5"' >"$mc/bad-values"
    printf '%s\n' 'permit_user_environment = true' >"$mc/permit-env"
    printf '%s\n' 'permit_user_environment = "yes"' 'permit_user_environment = [""]' >"$mc/bad-permit-env"

    # A typical ~/.ssh/config; the ssh_config target resolves it for host.example.com,
    # build-1 and alice@extra, with home = a sandbox holding .ssh/extra,
    # .ssh/conf.d/10-build and .ssh/loop (which includes itself).
    cat >"$sc/typical" <<'CONF'
# personal settings
Host host.example.com
    HostName 10.0.0.5
    Port 2222
    User ops
    IdentityFile ~/.ssh/id_ed25519
    IdentityFile ~/.ssh/id_%r@%h
    CertificateFile ~/.ssh/id_ed25519-cert.pub
    StrictHostKeyChecking accept-new
    UserKnownHostsFile ~/.ssh/known_hosts.d/%k

Host build-* !build-old
    HostName %h.corp.example.com
    HostKeyAlias build
    ConnectTimeout 10
    ServerAliveInterval=30

Match host *.example.com exec "true"
    ForwardAgent yes

Host *
    SendEnv LANG LC_*
    SetEnv TERM=xterm-256color FOO=bar
    IdentitiesOnly yes
    BatchMode no
    HashKnownHosts yes
    LogLevel VERBOSE
    EscapeChar ^]
CONF
    printf '%s\n' 'Include conf.d/*' '' 'Host *' '  User fuzz' >"$sc/include-glob"
    printf '%s\n' 'Host extra host.example.com' '  Include ~/.ssh/extra' '  Port 22' >"$sc/include-home"
    printf '%s\n' 'Include config' >"$sc/include-self"
    printf '%s\n' 'Host *' '  GSSAPIAuthentication yes' '  IgnoreUnknown UseKeychain,AddKeys*' \
        '  UseKeychain yes' '  AddKeysToAgent yes' '  Port 2200 # trailing comment' >"$sc/openssh-keys"
    printf '%s\n' 'Host build-1' '  ProxyJump bastion' 'Host *' '  RevokedHostKeys none' \
        '  StrictHostKeyChecking no' >"$sc/refused"
    printf '%s\r\n' 'Host "host.example.com"' '  Port="2022"' '  User=a b' '  EscapeChar none' >"$sc/quotes-crlf"
    printf '%s\n' 'Host' 'Port 0' 'IdentityFile %z' 'SetEnv =x' 'LogLevel LOUD' >"$sc/bad-values"
}

if [ "${1:-}" = config ]; then
    config_seeds
    echo "mkcorpus.sh: wrote $(find "$corpus/mshd_config" "$corpus/ssh_config" -type f | wc -l) config seeds"
    exit 0
fi

work="$here/target/mkcorpus-tmp"
rm -rf "$work" "$fix" "$corpus"
mkdir -p "$work" "$fix"
for t in known_hosts authorized_keys pattern krl certificate; do mkdir -p "$corpus/$t"; done

keygen() { ssh-keygen -q -N '' "$@"; }
keygen -t ed25519 -C fuzz-ca -f "$fix/ca"
keygen -t ed25519 -C alice@fuzz -f "$work/user"
keygen -t ed25519 -C host-ed25519 -f "$work/host"
keygen -t ecdsa -b 256 -C host-ecdsa -f "$work/ecdsa"
keygen -t rsa -b 2048 -C old-rsa -f "$work/rsa"
cp "$work/user.pub" "$work/host.pub" "$work/ecdsa.pub" "$work/rsa.pub" "$fix/"

# User certificate: principals, serial, both critical options, the default extensions.
ssh-keygen -q -s "$fix/ca" -I alice@fuzz -n alice,bob -z 42 -V 20200101:20400101 \
    -O source-address=127.0.0.1,10.0.0.0/8 -O force-command=uptime "$work/user.pub"
# Host certificate.
ssh-keygen -q -s "$fix/ca" -h -I host.example.com -n host.example.com,10.0.0.5 -z 7 \
    -V 20200101:20400101 "$work/host.pub"
cp "$work/user-cert.pub" "$work/host-cert.pub" "$fix/"

user=$(cat "$fix/user.pub")
host=$(cat "$fix/host.pub")
ecdsa=$(cat "$fix/ecdsa.pub")
rsa=$(cat "$fix/rsa.pub")
ca=$(cat "$fix/ca.pub")

# --- known_hosts -------------------------------------------------------------------------
kh="$corpus/known_hosts"
printf '%s\n' "host.example.com,10.0.0.5 $host" >"$kh/plain"
printf '%s\n' "[build.internal]:2222 $ecdsa" "[host.example.com]:2222,[10.0.0.5]:2222 $rsa" >"$kh/ports"
printf '%s\n' "@cert-authority *.example.com,!bad.example.com $ca" "@revoked * $rsa" \
    "*.example.com,!bad.example.com $user" >"$kh/markers"
printf '%s\n' "# comment" "" "  host.example.com $host" "broken line" "host.example.com ssh-ed25519 AAAA" >"$kh/mixed"
printf '%s\r\n' "host.example.com $host" "10.0.0.?,build.* $ecdsa" >"$kh/crlf"
cat "$kh/plain" "$kh/ports" >"$work/kh"
ssh-keygen -q -H -f "$work/kh" >/dev/null 2>&1
cp "$work/kh" "$kh/hashed"

# --- authorized_keys ---------------------------------------------------------------------
ak="$corpus/authorized_keys"
printf '%s\n' "$user" >"$ak/plain"
printf '%s\n' "from=\"10.0.0.0/8,!10.0.0.9,127.0.0.*\",command=\"uptime\",no-pty $user" >"$ak/from"
printf '%s\n' "restrict,pty,command=\"echo \\\"x\\\", y # z\" $rsa" \
    "environment=\"LANG=C\",environment=\"A=b c\",no-agent-forwarding,no-X11-forwarding $ecdsa" >"$ak/quoted"
printf '%s\n' "cert-authority,principals=\"alice,ops\",from=\"::1,127.0.0.1\" $ca" >"$ak/cert-authority"
printf '%s\n' "expiry-time=\"20300101\",permitopen=\"localhost:80\",permitlisten=\"8080\" $user" \
    "expiry-time=\"200001010000\" $host" >"$ak/expiry"
# authorized_principals_file lines with the options PrincipalEntry::authorise applies.
printf '%s\n' 'from="10.0.0.0/8" ops' 'expiry-time="20200101" alice' 'cert-authority ops' \
    'principals="a" bob' 'from="127.0.0.1,::1",expiry-time="29990101" alice' >"$ak/principals-options"
printf '%s\n' "# comment" "" "no-such-option $user" "$(cat "$fix/user-cert.pub")" "ssh-ed25519 AAAA" >"$ak/invalid"

# --- pattern: name NUL list ---------------------------------------------------------------
pt="$corpus/pattern"
printf '%s\0%s' host.example.com '*.example.com,!bad.example.com' >"$pt/negation"
printf '%s\0%s' '[10.0.0.5]:2222' '[10.0.0.?]:2222' >"$pt/port"
printf '%s\0%s' HOST.Example.COM 'host.example.*' >"$pt/case"
printf '%s\0%s' aaaaaaaaaaaaaaaaaaaaab '*a*a*a*a*a*b' >"$pt/backtrack"

# --- krl ------------------------------------------------------------------------------------
kr="$corpus/krl"
ssh-keygen -q -k -f "$kr/explicit-keys" "$fix/user.pub" "$fix/rsa.pub"
printf '%s\n' "serial: 1-10" "serial: 42" "serial: 1000" "id: alice@fuzz" "id: other" >"$work/spec-ca"
ssh-keygen -q -k -s "$fix/ca.pub" -f "$kr/ca-serials" "$work/spec-ca"
printf '%s\n' "sha256: $ecdsa" "sha1: $rsa" \
    "hash: $(ssh-keygen -lf "$fix/host.pub" | awk '{print $2}')" "key: $host" >"$work/spec-fp"
ssh-keygen -q -k -f "$kr/fingerprints" "$work/spec-fp"
cp "$kr/ca-serials" "$work/updated"
ssh-keygen -q -k -u -z 2 -s "$fix/ca.pub" -f "$work/updated" "$work/spec-fp"
cp "$work/updated" "$kr/updated"
# Serials far apart, so ssh-keygen writes a bitmap and ranges as well as a list.
seq 100 3 400 | sed 's/^/serial: /' >"$work/spec-bitmap"
printf '%s\n' "serial: 5000-6000" >>"$work/spec-bitmap"
ssh-keygen -q -k -s "$fix/ca.pub" -f "$kr/bitmap" "$work/spec-bitmap"
# Text revocation lists (public keys, one a line) are parsed by the same entry point.
printf '%s\n' "# revoked" "$rsa" "$(cat "$fix/user-cert.pub")" >"$kr/text-list"

# --- certificate: mode byte 0 + certificate line, or 1 + binary certificate blob ------------
ce="$corpus/certificate"
for c in user host; do
    { printf '\0'; cat "$fix/$c-cert.pub"; } >"$ce/$c-line"
    { printf '\1'; awk '{print $2}' "$fix/$c-cert.pub" | base64 -d; } >"$ce/$c-blob"
done

config_seeds

rm -rf "$work"
echo "mkcorpus.sh: wrote $(find "$fix" -type f | wc -l) fixtures and $(find "$corpus" -type f | wc -l) seeds"
