ln -s file link-to-file
ln -s dir link-to-dir
ln -s /nonexistent dangling
ln file hard1
ln file hard2
chmod 0751 dir
chmod 0600 file
