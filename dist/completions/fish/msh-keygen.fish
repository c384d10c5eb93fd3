# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_msh_keygen_global_optspecs
    string join \n h/help V/version
end

function __fish_msh_keygen_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_msh_keygen_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_msh_keygen_using_subcommand
    set -l cmd (__fish_msh_keygen_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -s V -l version -d 'Print version'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "generate" -d 'Create a key pair: PATH (private, 0600) and PATH.pub (0644)'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "fingerprint" -d 'Print `BITS SHA256:... COMMENT (TYPE)` for a key file, or for each key of an authorized_keys/known_hosts-style file, like `ssh-keygen -lf`'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "scan" -d 'Connect to HOST[:PORT] once per host-key type and print its keys as known_hosts lines (stdout) with their fingerprints (stderr), like ssh-keyscan'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "sign" -d 'Certify public keys with a CA key, writing KEY-cert.pub beside each (ssh-keygen -s)'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "inspect" -d 'Show a certificate as `ssh-keygen -L` does (plus its validity in UTC)'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "revoke" -d 'Add keys (or certificates\' keys) to a revocation list read by mshd and sshd'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "known-hosts" -d 'Find, remove or hash host entries in a known_hosts file (ssh-keygen -F, -R, -H)'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "rotate-host-key" -d 'Generate the next host key beside the current one (CURRENT.next) and print the known_hosts lines of both keys, with the rotation\'s steps'
complete -c msh-keygen -n "__fish_msh_keygen_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -s t -l type -d 'Key type: ed25519, ecdsa or rsa' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -s b -l bits -d 'Key size: ecdsa 256 (default), 384 or 521; rsa 1024..16384 (default 3072)' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -s f -l file -d 'Where to write the private key (PATH.pub gets the public key)' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -s C -l comment -d 'Comment stored with the key (default: user@hostname)' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -s N -l passphrase -d 'Passphrase (\'\' for none). Without it, asked twice on a terminal; empty otherwise' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -l force -d 'Replace PATH and PATH.pub if they exist'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -s q -l quiet -d 'Print nothing on success'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand fingerprint" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand scan" -s p -l port -d 'Port (overrides one given in HOST)' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand scan" -s t -l types -d 'Key types to ask for, comma-separated: ed25519, ecdsa, rsa' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand scan" -l timeout -d 'Seconds to wait for each connection and handshake' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand scan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l ca -d 'The CA\'s private key (asks for its passphrase on the terminal when encrypted)' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l id -d 'Key identity, logged by servers on every login with the certificate' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l principals -d 'Comma-separated user names (or host names with --host) the certificate is valid for' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l validity -d 'Validity in `ssh-keygen -V` syntax: +52w, -1d:+4w, 20260101:20270101, always:forever. Default: forever, as ssh-keygen' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l serial -d 'Serial number, revocable with a KRL `serial:` line' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l force-command -d 'Critical option force-command: run CMD instead of whatever the user asks' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l source-address -d 'Critical option source-address: logins only from these addresses/CIDRs' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -l host -d 'Issue host certificates (for mshd\'s host_certificates / sshd\'s HostCertificate)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand sign" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand revoke" -s f -l file -d 'The revocation list to add to (created 0644 if missing). A binary KRL is refused: update it with `ssh-keygen -k -u`' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and not __fish_seen_subcommand_from find remove hash help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and not __fish_seen_subcommand_from find remove hash help" -f -a "find" -d 'Print the lines that match HOST, like `ssh-keygen -F`; exit 1 when none does'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and not __fish_seen_subcommand_from find remove hash help" -f -a "remove" -d 'Delete the lines for HOST (keeping FILE.old), like `ssh-keygen -R`'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and not __fish_seen_subcommand_from find remove hash help" -f -a "hash" -d 'Replace plain host names by hashed ones (keeping FILE.old), like `ssh-keygen -H`'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and not __fish_seen_subcommand_from find remove hash help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from find" -s p -l port -d 'Port: entries for a port other than 22 are stored as `[host]:port`' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from find" -s f -l file -d 'known_hosts file (default ~/.ssh/known_hosts)' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from find" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from remove" -s p -l port -d 'Port: entries for a port other than 22 are stored as `[host]:port`' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from remove" -s f -l file -d 'known_hosts file (default ~/.ssh/known_hosts)' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from hash" -s f -l file -d 'known_hosts file (default ~/.ssh/known_hosts)' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from hash" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from help" -f -a "find" -d 'Print the lines that match HOST, like `ssh-keygen -F`; exit 1 when none does'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete the lines for HOST (keeping FILE.old), like `ssh-keygen -R`'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from help" -f -a "hash" -d 'Replace plain host names by hashed ones (keeping FILE.old), like `ssh-keygen -H`'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand known-hosts; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand rotate-host-key" -l current -d 'The host key in use now (private key file; its PATH.pub is read)' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand rotate-host-key" -l next -d 'Where to write the next key (default: CURRENT.next, and CURRENT.next.pub)' -r -F
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand rotate-host-key" -s t -l type -d 'Key type of the next key: ed25519, ecdsa or rsa (default: the current key\'s type)' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand rotate-host-key" -s b -l bits -d 'Key size (ecdsa 256, 384, 521; rsa 1024..16384, default 3072)' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand rotate-host-key" -l host -d 'Names clients use for the host (repeatable or comma-separated), for the known_hosts lines' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand rotate-host-key" -s p -l port -d 'mshd\'s port: names are written `[name]:port` when it is not 22' -r
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand rotate-host-key" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "generate" -d 'Create a key pair: PATH (private, 0600) and PATH.pub (0644)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "fingerprint" -d 'Print `BITS SHA256:... COMMENT (TYPE)` for a key file, or for each key of an authorized_keys/known_hosts-style file, like `ssh-keygen -lf`'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "scan" -d 'Connect to HOST[:PORT] once per host-key type and print its keys as known_hosts lines (stdout) with their fingerprints (stderr), like ssh-keyscan'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "sign" -d 'Certify public keys with a CA key, writing KEY-cert.pub beside each (ssh-keygen -s)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "inspect" -d 'Show a certificate as `ssh-keygen -L` does (plus its validity in UTC)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "revoke" -d 'Add keys (or certificates\' keys) to a revocation list read by mshd and sshd'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "known-hosts" -d 'Find, remove or hash host entries in a known_hosts file (ssh-keygen -F, -R, -H)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "rotate-host-key" -d 'Generate the next host key beside the current one (CURRENT.next) and print the known_hosts lines of both keys, with the rotation\'s steps'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and not __fish_seen_subcommand_from generate fingerprint scan sign inspect revoke known-hosts rotate-host-key help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and __fish_seen_subcommand_from known-hosts" -f -a "find" -d 'Print the lines that match HOST, like `ssh-keygen -F`; exit 1 when none does'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and __fish_seen_subcommand_from known-hosts" -f -a "remove" -d 'Delete the lines for HOST (keeping FILE.old), like `ssh-keygen -R`'
complete -c msh-keygen -n "__fish_msh_keygen_using_subcommand help; and __fish_seen_subcommand_from known-hosts" -f -a "hash" -d 'Replace plain host names by hashed ones (keeping FILE.old), like `ssh-keygen -H`'
