# flexbridge container: a release build in a full Rust image, copied into a
# minimal runtime image that runs as a non-root user.
#
#   docker build -t flexbridge .
#   docker run --rm -p 8080:8080 flexbridge --dev

# Both stages on Debian 13 ("trixie"): the binary links against the glibc
# it runs with. distroless stopped updating its Debian 12 images a year
# after Debian 13's release (August 2026).
FROM rust:1.95-slim-trixie AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked --bin flexbridge \
    && rm -rf src
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin flexbridge \
    && strip target/release/flexbridge

# glibc and libgcc only; TLS roots are compiled in (rustls + webpki-roots),
# so no CA bundle or OpenSSL is needed.
FROM gcr.io/distroless/cc-debian13:nonroot
COPY --from=build /src/target/release/flexbridge /usr/local/bin/flexbridge
ENV HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/flexbridge"]
CMD ["serve"]
