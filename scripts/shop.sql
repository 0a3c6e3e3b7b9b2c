-- The sample `shop` database: a few tables with generated rows, a view, a trigger, a routine
-- and an event, BLOBs and utf8mb4 text. Run it inside the target database, with @scale set to
-- the number of orders to generate (default 5000), e.g.:
--   { echo "SET @scale=5000;"; cat scripts/shop.sql; } | mariadb shop
SET NAMES utf8mb4;
SET @scale = COALESCE(@scale, 5000);

DROP TABLE IF EXISTS order_items, orders, products, customers, digits, seq, audit_log;

CREATE TABLE digits (d TINYINT UNSIGNED PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);

CREATE TABLE customers (
  id INT UNSIGNED PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(190) NOT NULL UNIQUE,
  city VARCHAR(100) NOT NULL,
  created_at DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE products (
  id INT UNSIGNED PRIMARY KEY,
  sku CHAR(12) NOT NULL UNIQUE,
  title VARCHAR(200) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  thumbnail BLOB
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
  id INT UNSIGNED PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  placed_at DATETIME NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL,
  note TEXT,
  total DECIMAL(12,2) NOT NULL DEFAULT 0,
  KEY (customer_id),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_items (
  order_id INT UNSIGNED NOT NULL,
  line TINYINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  qty SMALLINT UNSIGNED NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  PRIMARY KEY (order_id, line),
  CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders(id),
  CONSTRAINT fk_items_product FOREIGN KEY (product_id) REFERENCES products(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE audit_log (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  order_id INT UNSIGNED NOT NULL,
  message VARCHAR(255) NOT NULL,
  logged_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- seq holds 0 .. @scale-1 (at least 0 .. 511), filled by doubling; dropped at the end.
CREATE TABLE seq (n INT UNSIGNED PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO seq VALUES (0);
DROP PROCEDURE IF EXISTS fill_seq;
DELIMITER //
CREATE PROCEDURE fill_seq(IN upto INT UNSIGNED)
BEGIN
  DECLARE have INT UNSIGNED DEFAULT 1;
  WHILE have < upto DO
    INSERT INTO seq SELECT n + have FROM seq WHERE n + have < upto;
    SET have = have * 2;
  END WHILE;
END//
DELIMITER ;
CALL fill_seq(GREATEST(512, @scale));
DROP PROCEDURE fill_seq;

INSERT INTO customers
SELECT n + 1, CONCAT('Customer ', n + 1, IF(n % 7 = 0, ' Ünïcødé 🛒', '')),
       CONCAT('c', n + 1, '@example.com'),
       ELT(1 + n % 5, 'Zürich', 'Kraków', 'São Paulo', '東京', 'Reykjavík'),
       TIMESTAMP('2024-01-01') + INTERVAL n MINUTE
FROM seq WHERE n < GREATEST(50, @scale DIV 5);

INSERT INTO products
SELECT n + 1, CONCAT('SKU', LPAD(n + 1, 9, '0')), CONCAT('Product №', n + 1, ' — “quoted”'),
       ROUND(1 + (n * 37 % 10000) / 100, 2), UNHEX(SHA2(CONCAT('img', n), 512))
FROM seq WHERE n < 500;

INSERT INTO orders (id, customer_id, placed_at, status, note)
SELECT n + 1, 1 + n % GREATEST(50, @scale DIV 5), TIMESTAMP('2025-01-01') + INTERVAL n * 3 MINUTE,
       ELT(1 + n % 4, 'new', 'paid', 'shipped', 'cancelled'),
       IF(n % 3 = 0, CONCAT('Please deliver to the back door; tab\there, newline\nthere, quote '' and backslash \\ #', n), NULL)
FROM seq WHERE n < @scale;

INSERT INTO order_items
SELECT o.id, l.d + 1, 1 + (o.id * 13 + l.d * 7) % 500, 1 + (o.id + l.d) % 5,
       ROUND(1 + ((o.id * 13 + l.d * 7) % 500 * 37 % 10000) / 100, 2)
FROM orders o JOIN digits l ON l.d < 1 + o.id % 4;

UPDATE orders o JOIN (SELECT order_id, SUM(qty * price) AS s FROM order_items GROUP BY order_id) t
  ON t.order_id = o.id SET o.total = t.s;

CREATE OR REPLACE VIEW order_totals AS
  SELECT c.id AS customer_id, c.name, COUNT(o.id) AS orders, COALESCE(SUM(o.total), 0) AS spent
  FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name;

DROP TRIGGER IF EXISTS orders_status_audit;
CREATE TRIGGER orders_status_audit AFTER UPDATE ON orders FOR EACH ROW
  INSERT INTO audit_log (order_id, message)
  VALUES (NEW.id, CONCAT('status ', OLD.status, ' -> ', NEW.status));

DROP FUNCTION IF EXISTS order_count;
CREATE FUNCTION order_count(cid INT UNSIGNED) RETURNS INT READS SQL DATA
  RETURN (SELECT COUNT(*) FROM orders WHERE customer_id = cid);

DROP PROCEDURE IF EXISTS cancel_stale_orders;
CREATE PROCEDURE cancel_stale_orders(IN days INT)
  UPDATE orders SET status = 'cancelled'
  WHERE status = 'new' AND placed_at < NOW() - INTERVAL days DAY;

DROP EVENT IF EXISTS purge_audit_log;
CREATE EVENT purge_audit_log ON SCHEDULE EVERY 1 DAY DISABLE
  DO DELETE FROM audit_log WHERE logged_at < NOW() - INTERVAL 90 DAY;

UPDATE orders SET status = 'paid' WHERE id <= 3 AND status = 'new';
DROP TABLE seq;
