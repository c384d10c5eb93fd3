complete -c mshd -l config -d 'Config file (TOML). Default: /etc/msh/mshd.toml as root, else <config_dir>/msh/mshd.toml' -r -F
complete -c mshd -l listen -d 'Address to listen on (repeatable); replaces `listen` from the file' -r
complete -c mshd -l host-key -d 'Host private key (repeatable); replaces `host_keys` from the file' -r -F
complete -c mshd -l authorized-keys -d 'authorized_keys file pattern (%h home, %u user; repeatable); replaces `authorized_keys_files` from the file' -r
complete -c mshd -l audit-log -d 'Write the JSON-lines audit log to PATH (`-` = stdout)' -r
complete -c mshd -l check-config -d 'Validate the configuration, print the effective settings and exit'
complete -c mshd -s v -l verbose -d 'More log output (-v info is the default, -vv debug, -vvv trace). RUST_LOG wins'
complete -c mshd -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mshd -s V -l version -d 'Print version'
