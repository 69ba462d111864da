mkdir -p t/dir && echo in-tar > t/dir/f && ln -s f t/dir/l && chmod 0640 t/dir/f
tar -C t -cf plain.tar dir
tar -C t -czf gz.tar.gz dir
tar -C t -cjf bz.tar.bz2 dir
tar -C t -cJf xz.tar.xz dir
echo single | gzip -n > single.txt.gz
rm -r t
