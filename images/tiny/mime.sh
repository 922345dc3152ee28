# shellcheck shell=sh
# MIME multipart user-data for the tiny image's /init (sourced; busybox sh + awk).
#
# cloud-init's way (cloudinit/user_data.py, handlers, cc_scripts_user), the parts Butter
# writes (src/core/blueprint/mime.ts) and the subset the tiny image can act on:
#   * the message is multipart when its header block has `Content-Type: multipart/...;
#     boundary=...`; parts are split on that boundary (RFC 2046: the line break before a
#     delimiter belongs to the delimiter), each with its own headers;
#   * a part's payload is decoded by its Content-Transfer-Encoding (7bit/8bit/binary as is,
#     base64 with `base64 -d`);
#   * a text/plain, text/x-not-multipart or text/x-shellscript part is re-typed by how its
#     payload begins (`#cloud-config` -> text/cloud-config, `#!` -> text/x-shellscript, ...),
#     as cloud-init does;
#   * text/cloud-config parts are merged in order, a later top-level key replacing an
#     earlier one (cloud-init's default merge for top-level keys), and applied as one
#     document: hostname and ssh keys every boot, write_files once per instance;
#   * text/x-shellscript parts run once per instance after write_files, sorted by file name
#     (cloud-init writes them into one scripts directory and runs it in name order, with
#     runcmd as the script named `runcmd` among them);
#   * every other part is ignored with one console line.
# Nested multiparts, quoted-printable and gzip parts are not understood (ignored, a line each).

# split_mime FILE DIR: 0 and DIR/parts ("n|content-type|encoding|filename" per part) plus
# DIR/body.<n> (the raw payload) when FILE is a multipart message; 1 when it is not.
split_mime() {
  rm -rf "$2"; mkdir -p "$2"
  awk -v out="$2" '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    function is_header(s) { return s ~ /^[!-9;-~]+:/ }
    # The value of parameter `want` in a header value "type; a=b; c=\"d\"" ("" if none).
    function param(v, want,    n, a, i, k, p) {
      n = split(v, a, ";")
      for (i = 2; i <= n; i++) {
        p = trim(a[i])
        k = tolower(trim(substr(p, 1, index(p, "=") - 1)))
        if (index(p, "=") == 0 || k != want) continue
        p = trim(substr(p, index(p, "=") + 1))
        if (substr(p, 1, 1) == "\"") { p = substr(p, 2); sub(/"$/, "", p); gsub(/\\\\/, "\001", p); gsub(/\\/, "", p); gsub(/\001/, "\\", p) }
        return p
      }
      return ""
    }
    function ctype_of(v) { v = tolower(trim(v)); sub(/[ \t]*;.*/, "", v); return v }
    # One unfolded header line into h[lowercased name].
    function header(line,    k) {
      k = tolower(trim(substr(line, 1, index(line, ":") - 1)))
      h[k] = trim(substr(line, index(line, ":") + 1))
    }
    function flush_header() { if (hl != "") header(hl); hl = "" }
    function start_part() {
      n++; state = "phdr"; hl = ""; pending = ""; haspending = 0
      delete h
    }
    function end_headers(    t, fn) {
      flush_header()
      t = ("content-type" in h) ? ctype_of(h["content-type"]) : "text/plain"
      fn = ("content-disposition" in h) ? param(h["content-disposition"], "filename") : ""
      if (fn == "") fn = sprintf("part-%03d", n)
      gsub(/[^A-Za-z0-9._+-]/, "_", fn); gsub(/[^a-z0-9.\/+-]/, "_", t)
      enc = ("content-transfer-encoding" in h) ? tolower(trim(h["content-transfer-encoding"])) : "7bit"
      gsub(/[^a-z0-9-]/, "_", enc)
      printf "%d|%s|%s|%s\n", n, t, enc, fn > (out "/parts")
      body = out "/body." n; printf "" > body
      state = "pbody"
    }
    function end_part() {
      if (state == "phdr") end_headers()
      if (haspending) { sub(/\r$/, "", pending); printf "%s", pending > body }
      close(body); haspending = 0
    }
    BEGIN { state = "top"; hl = "" }
    {
      line = $0; bare = line; sub(/\r$/, "", bare)
      if (state == "top") {
        if (bare == "") {
          flush_header()
          b = ctype_of(h["content-type"]) ~ /^multipart\// ? param(h["content-type"], "boundary") : ""
          if (b == "") { notmime = 1; exit 1 }
          state = "preamble"; next
        }
        if (bare ~ /^[ \t]/ && hl != "") { hl = hl " " trim(bare); next }
        if (!is_header(bare)) { notmime = 1; exit 1 }
        flush_header(); hl = bare; next
      }
      if (state == "epilogue") next
      if (substr(bare, 1, length(b) + 2) == "--" b) {
        rest = substr(bare, length(b) + 3)
        if (rest ~ /^--[ \t]*$/) { if (state != "preamble") end_part(); state = "epilogue"; next }
        if (rest ~ /^[ \t]*$/) { if (state != "preamble") end_part(); start_part(); next }
      }
      if (state == "preamble") next
      if (state == "phdr") {
        if (bare == "") { end_headers(); next }
        if (bare ~ /^[ \t]/ && hl != "") { hl = hl " " trim(bare); next }
        if (is_header(bare)) { flush_header(); hl = bare; next }
        end_headers()   # no blank line after the headers: this line is the payload
      }
      if (haspending) printf "%s\n", pending > body
      pending = line; haspending = 1
    }
    END {
      if (notmime || state == "top") exit 1
      if (state == "phdr" || state == "pbody") end_part()
      if (n == 0) printf "" > (out "/parts")
    }
  ' "$1"
}

# retype TYPE FILE: cloud-init looks at how the payload begins for these types.
retype() {
  case "$1" in
    text/plain|text/x-not-multipart|text/x-shellscript) ;;
    *) echo "$1"; return ;;
  esac
  case "$(head -n 1 "$2" | tr -d '\r')" in
    '#cloud-config-archive'*) echo text/cloud-config-archive ;;
    '#cloud-config'*) echo text/cloud-config ;;
    '#cloud-boothook'*) echo text/cloud-boothook ;;
    '#include-once'*) echo text/x-include-once-url ;;
    '#include'*) echo text/x-include-url ;;
    '#part-handler'*) echo text/part-handler ;;
    '#!'*) echo text/x-shellscript ;;
    *) echo "$1" ;;
  esac
}

# merge_cloud_config OUT FILE...: one document; a later top-level key replaces an earlier
# one, keeping the place where the key first appeared (as a dict update does).
merge_cloud_config() {
  _out=$1; shift
  awk '
    FNR == 1 { k = "" }
    { line = $0; bare = line; sub(/\r$/, "", bare) }
    bare ~ /^(---|\.\.\.)[ \t]*$/ { next }
    bare ~ /^[^ \t#-]/ || bare ~ /^-[^ \t]/ {
      if (bare ~ /^[A-Za-z_][A-Za-z0-9_-]*:/) { k = bare; sub(/:.*/, "", k) }
      else k = "\001" (++anon)   # not a key the reader knows: kept as written
      if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      text[k] = bare; next
    }
    k != "" { text[k] = text[k] "\n" bare }
    END {
      print "#cloud-config"
      for (i = 1; i <= nk; i++) print text[order[i]]
    }
  ' "$@" >"$_out"
}

# process_multipart NAME FILE: FILE is NAME's (user-data or vendor-data) multipart message,
# already split into $RUN/NAME.mime by split_mime.
process_multipart() {
  name=$1
  dir=$RUN/$name.mime
  : >"$dir/cc-files"; : >"$dir/scripts"
  say "$name: multipart message, $(grep -c . "$dir/parts") parts"
  while IFS='|' read -r n type enc fn; do
    src=$dir/body.$n
    case "$enc" in
      7bit|8bit|binary) ;;
      base64)
        if ! base64 -d "$src" >"$src.dec" 2>/dev/null; then
          err "$name: part $fn: bad base64, ignored"
          continue
        fi
        mv "$src.dec" "$src"
        ;;
      *) err "$name: part $fn: unsupported Content-Transfer-Encoding $enc, ignored"; continue ;;
    esac
    type=$(retype "$type" "$src")
    case "$type" in
      text/cloud-config) echo "$src" >>"$dir/cc-files" ;;
      text/x-shellscript) echo "$fn|$n" >>"$dir/scripts" ;;
      *) say "$name: ignoring part $fn ($type)" ;;
    esac
  done <"$dir/parts"

  cc=
  if [ -s "$dir/cc-files" ]; then
    cc=$dir/cc
    # shellcheck disable=SC2046 # the part files are ours, named body.<n>
    merge_cloud_config "$dir/cloud-config" $(cat "$dir/cc-files")
    cc_every_boot "$name" "$dir/cloud-config" "$cc" || cc=
  fi
  # once per instance: write_files, then scripts and runcmd in name order
  marker=$INSTDIR/$name.done
  if [ -e "$marker" ]; then
    say "$name already ran for instance-id=$IID"
    return 0
  fi
  [ -n "$cc" ] && apply_write_files "$cc"
  if [ -n "$cc" ] && [ -n "$(ls "$cc" | grep '^rc\.')" ]; then echo "runcmd|0" >>"$dir/scripts"; fi
  LC_ALL=C sort -t'|' -k1,1 -k2,2n "$dir/scripts" >"$dir/scripts.sorted"
  while IFS='|' read -r fn n; do
    if [ "$n" = 0 ]; then
      apply_runcmd "$cc"
      continue
    fi
    script=$RUN/$name.part.$n
    cp "$dir/body.$n" "$script"
    chmod 700 "$script"
    say "running $name part $fn"
    (cd / && "$script") </dev/null
    rc=$?
    if [ $rc -eq 0 ]; then say "$name part $fn finished"; else err "$name part $fn exited with status $rc"; fi
  done <"$dir/scripts.sorted"
  ran_at >"$marker"
  sync
  say "$name multipart applied"
}
