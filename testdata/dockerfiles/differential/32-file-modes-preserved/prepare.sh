mkdir -p modes/d && echo x > modes/exec && chmod 0755 modes/exec && echo y > modes/ro && chmod 0444 modes/ro && chmod 2775 modes/d && echo s > modes/sticky && chmod 1644 modes/sticky
