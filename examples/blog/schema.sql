-- The blog's schema at head, as the project declares it: `retort check` compares it
-- with what the 13 revisions build (offline, no database) and fails when they differ.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email VARCHAR(100) NOT NULL UNIQUE,
    created_at TIMESTAMP,
    phone VARCHAR(30),
    status VARCHAR(20) NOT NULL DEFAULT 'active',
    role VARCHAR(50) NOT NULL,
    first_name VARCHAR(50),
    last_name VARCHAR(50),
    is_verified BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX ix_users_id ON users (id);
CREATE INDEX ix_users_email ON users (email);

CREATE TABLE posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title VARCHAR(200) NOT NULL,
    user_id INTEGER NOT NULL,
    category_id INTEGER,
    slug VARCHAR(220),
    CONSTRAINT fk_posts_user_id FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_posts_category_id FOREIGN KEY (category_id) REFERENCES categories (id)
        ON DELETE SET NULL
);
CREATE UNIQUE INDEX ix_posts_slug ON posts (slug);

CREATE TABLE categories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(100) NOT NULL UNIQUE,
    description TEXT
);
